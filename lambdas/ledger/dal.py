"""Where chained entries live: the region's ledger table, and the Object Lock archive in S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from shared.ledger import canonical

RETENTION_DAYS = 400  # the table is the queryable copy; the archive keeps the records for years


class LedgerTable:
    """One item per entry: partition key ``chain`` (region#day), sort key ``seq``."""

    def __init__(self, table: str, client: Any) -> None:
        self._table = table
        self._client = client

    def tail(self, chain: str, limit: int) -> list[dict[str, Any]]:
        answer = self._client.query(
            TableName=self._table,
            KeyConditionExpression="#chain = :c",
            ExpressionAttributeNames={"#chain": "chain"},
            ExpressionAttributeValues={":c": {"S": chain}},
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        return [json.loads(item["document"]["S"]) for item in answer.get("Items", [])]

    def put(self, entries: list[dict[str, Any]]) -> None:
        """All entries in one transaction, each only where its position is still free."""
        expires = 0
        items = []
        for entry in entries:
            expires = _epoch(entry.get("recorded_at", "")) + RETENTION_DAYS * 86_400
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "chain": {"S": entry["chain"]},
                            "seq": {"N": str(entry["seq"])},
                            "request_id": {"S": str(entry.get("request_id", ""))},
                            "document": {"S": canonical(entry)},
                            "expires_at": {"N": str(expires)},
                        },
                        "ConditionExpression": "attribute_not_exists(#seq)",
                        "ExpressionAttributeNames": {"#seq": "seq"},
                    }
                }
            )
        for start in range(0, len(items), 100):  # TransactWriteItems takes at most 100 items
            self._client.transact_write_items(TransactItems=items[start : start + 100])

    def entries(self, chain: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#chain = :c",
            "ExpressionAttributeNames": {"#chain": "chain"},
            "ExpressionAttributeValues": {":c": {"S": chain}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                yield json.loads(item["document"]["S"])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _epoch(stamp: str) -> int:
    from datetime import UTC, datetime

    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).timestamp())
    except ValueError:
        return 0


def archive_prefix(chain: str) -> str:
    region, day = chain.split("#", 1)
    return f"ledger/{region}/{day}/"


def archive_key(chain: str, first_seq: int, last_seq: int) -> str:
    return f"{archive_prefix(chain)}{first_seq:010d}-{last_seq:010d}.jsonl"


class Archive:
    """JSON Lines objects in the Object Lock bucket; the bucket's default retention locks each one."""

    def __init__(self, bucket: str, client: Any) -> None:
        self._bucket = bucket
        self._client = client

    def export(self, chain: str, entries: list[dict[str, Any]]) -> str:
        key = archive_key(chain, int(entries[0]["seq"]), int(entries[-1]["seq"]))
        body = "".join(canonical(e) + "\n" for e in entries).encode()
        # Object Lock requires an integrity checksum on every write.
        self._client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType="application/x-ndjson",
            ChecksumAlgorithm="SHA256",
        )
        return key

    def objects(self, chain: str) -> Iterator[tuple[str, list[bytes]]]:
        """Every object of the chain with all its versions' bodies, oldest first."""
        versions: dict[str, list[str]] = {}
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": archive_prefix(chain)}
        while True:
            page = self._client.list_object_versions(**kwargs)
            for version in page.get("Versions", []):
                # S3 lists each key's versions newest first.
                versions.setdefault(version["Key"], []).append(version["VersionId"])
            if not page.get("IsTruncated"):
                break
            kwargs["KeyMarker"] = page.get("NextKeyMarker")
            kwargs["VersionIdMarker"] = page.get("NextVersionIdMarker")
        for key in sorted(versions):
            bodies = []
            for version_id in reversed(versions[key]):
                obj = self._client.get_object(Bucket=self._bucket, Key=key, VersionId=version_id)
                bodies.append(obj["Body"].read())
            yield key, bodies
