"""Synth is deterministic: two syntheses give byte-identical templates."""

from tests.infrastructure.conftest import synthesize


def test_two_synths_are_byte_identical(synthesized, tmp_path):
    again = synthesize(tmp_path / "again")
    for path in sorted(synthesized.outdir.glob("*.template.json")):
        assert path.read_bytes() == (again.outdir / path.name).read_bytes(), path.name


def test_without_a_domain_there_are_no_dns_resources_and_synth_says_so(synthesized):
    from aws_cdk.assertions import Annotations, Match

    for region in ("us-east-1", "us-west-2"):
        template = synthesized.regional(region)
        template.resource_count_is("AWS::Route53::HealthCheck", 0)
        template.resource_count_is("AWS::Route53::RecordSet", 0)
    primary = synthesized.stacks[f"FinAi-{synthesized.config.primary_region}"]
    infos = Annotations.from_stack(primary).find_info("*", Match.string_like_regexp("DNS failover is off.*"))
    assert infos
