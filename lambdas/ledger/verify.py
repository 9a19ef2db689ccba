"""Walk a day's audit chain and report its first break.

    python -m ledger.verify --region us-east-1 --day 2026-12-02 --bucket <ledger bucket>
    python -m ledger.verify --region us-east-1 --day 2026-12-02 --table <ledger table>

With both ``--bucket`` and ``--table`` it checks each copy and that both end at the same entry
(a chain cut short at its end has no broken link; the other copy shows it). Prints a JSON report
and exits 1 when a chain is broken, 0 when it is whole. Reads only; needs s3:ListBucketVersions,
s3:GetObjectVersion (and kms:Decrypt) or dynamodb:Query.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3

from ledger.dal import Archive, LedgerTable
from shared.ledger import Break, Verdict, chain_id, verify


def verify_archive(archive: Archive, chain: str) -> Verdict:
    entries: list[dict[str, Any]] = []
    for key, bodies in archive.objects(chain):
        if len(set(bodies)) > 1:
            # Object Lock keeps the first version, but a later PUT can still add a newer one.
            first = json.loads(bodies[0].splitlines()[0]) if bodies[0] else {}
            overwritten = Break(int(first.get("seq", 0)), f"{key} was overwritten by a later version")
            return Verdict(chain, 0, 0, None, overwritten)
        for line in bodies[0].splitlines():
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    return Verdict(chain, 0, 0, None, Break(0, f"{key} holds a line that is not JSON"))
    return verify(chain, entries)


def verify_table(table: LedgerTable, chain: str) -> Verdict:
    return verify(chain, table.entries(chain))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger.verify", description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True, help="the region whose chain to walk")
    parser.add_argument("--day", required=True, help="the UTC day, YYYY-MM-DD")
    parser.add_argument("--bucket", help="the ledger bucket (Object Lock archive)")
    parser.add_argument("--table", help="the ledger table")
    parser.add_argument("--endpoint-url", help="an S3/DynamoDB endpoint (tests, local stacks)")
    args = parser.parse_args(argv)
    if not args.bucket and not args.table:
        parser.error("give --bucket, --table or both")
    chain = chain_id(args.region, args.day)
    reports: dict[str, Any] = {}
    verdicts: list[Verdict] = []
    if args.bucket:
        s3 = boto3.client("s3", region_name=args.region, endpoint_url=args.endpoint_url)
        verdicts.append(verify_archive(Archive(args.bucket, s3), chain))
        reports["archive"] = verdicts[-1].report()
    if args.table:
        dynamodb = boto3.client("dynamodb", region_name=args.region, endpoint_url=args.endpoint_url)
        verdicts.append(verify_table(LedgerTable(args.table, dynamodb), chain))
        reports["table"] = verdicts[-1].report()
    ok = all(v.ok for v in verdicts)
    if ok and len(verdicts) == 2 and verdicts[0].last_seq != verdicts[1].last_seq:
        ok = False
        reports["mismatch"] = (
            f"the archive ends at entry {verdicts[0].last_seq}, the table at {verdicts[1].last_seq}: "
            "the shorter copy lost entries at its end (or the archive is still catching up)"
        )
    reports["ok"] = ok
    print(json.dumps(reports, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
