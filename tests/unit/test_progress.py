"""`cluster up` progress: each stage says when it was reached last time, and a cold build how long it took."""

from netconform.cluster import lifecycle, paths, timings


def test_each_stage_says_when_it_was_reached_last_time(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    lines: list[str] = []
    first = lifecycle.Stages(lines.append, prefix="up 2 node(s): ")
    first("nodes registered; pod CIDRs routed: n1=10.244.0.0/24")
    first("  removed link ncbr0")  # a detail, not a stage
    first.record()
    assert lines[0].endswith("nodes registered; pod CIDRs routed: n1=10.244.0.0/24")
    assert set(timings.load()) == {"up 2 node(s): nodes registered"}

    lines.clear()
    again = lifecycle.Stages(lines.append, prefix="up 2 node(s): ")
    again("nodes registered; pod CIDRs routed: n1=10.244.1.0/24")
    assert "(last time at " in lines[0]
    other = lifecycle.Stages(lines.append, prefix="up 4 node(s): ")
    other("nodes registered; pod CIDRs routed: n1=10.244.1.0/24")
    assert "last time" not in lines[-1]


def test_a_cold_build_says_how_long_the_last_one_took(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    timings.save({"build kubernetes": 512.0})
    lines: list[str] = []
    stages = lifecycle.Stages(lines.append)
    finish = stages.building("kubernetes", "v1.35.4")
    took = finish()
    assert "building kubernetes v1.35.4 from Go modules: last build took 512s" in lines[0]
    assert took >= 0 and stages.seen["build kubernetes"] == took
    cold = lifecycle.Stages(lines.append).building("etcd", "v3.6.5")
    cold()
    assert lines[-1].endswith("etcd v3.6.5 from Go modules: cold, minutes")
