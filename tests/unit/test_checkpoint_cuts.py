"""checkpoints.cut_into_checkpoints: a sync's domains cut into checkpoints, and the keys that make
a checkpoint's merge read only its own domains."""

from aiclicks_pipeline.checkpoints import cut_into_checkpoints
from aiclicks_pipeline.settings import ENDPOINTS


def test_checkpoints_group_domains_by_what_is_due_and_cut_at_the_size_in_id_order():
    work = [
        ("e", {"prompts", "visibility_daily"}, 30),
        ("b", {"visibility_daily", "prompts"}, 5),
        ("d", {"visibility_daily"}, 1),
        ("a", {"prompts", "visibility_daily"}, 5),
        ("c", {"prompts", "visibility_daily"}, 5),
    ]
    checkpoints = cut_into_checkpoints(work, checkpoint_requests=10)

    assert [(c.domain_ids, c.planned_requests) for c in checkpoints] == [
        (["a", "b"], 10), (["c"], 5), (["e"], 30), (["d"], 1),
    ]
    assert checkpoints[0].resources == ("prompts", "visibility_daily")  # the table's order
    assert [c.number for c in checkpoints] == [1, 2, 3, 4]


def test_every_domain_scoped_table_is_keyed_on_its_domain_first():
    # with checkpoints in id order, the merge then reads only the checkpoint's own row groups
    for name, spec in ENDPOINTS.items():
        if spec["domain_scoped"]:
            assert spec["primary_key"][0] == "domain_id", name



def test_the_default_checkpoint_is_two_minutes_of_the_stated_limit():
    from aiclicks_pipeline.checkpoints import MAX_CHECKPOINT_REQUESTS, default_checkpoint_requests

    assert default_checkpoint_requests(60 / 60) == 120  # the real limit, one key
    assert default_checkpoint_requests(2 * 60 / 60) == 240  # two keys
    assert default_checkpoint_requests(180 / 60) == 360  # 180 a minute
    assert default_checkpoint_requests(600 / 60) == MAX_CHECKPOINT_REQUESTS == 1200  # the cap
    assert default_checkpoint_requests(1 / 3600) == 1  # never none
    assert default_checkpoint_requests(None) == MAX_CHECKPOINT_REQUESTS  # no headers
