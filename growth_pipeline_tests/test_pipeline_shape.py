"""pipeline_shape.py is the one place the pipeline's stages, assets, model names and daily jobs are written:
it must say what the Definitions hold."""

from growth_pipeline.definitions import defs
from growth_pipeline.lib.analytics.marts import ANALYSES
from growth_pipeline.pipeline_shape import (
    ALL_ASSETS,
    ANALYSIS_ASSET_NAMES,
    DAILY_JOBS,
    MODEL_ASSET_NAMES,
    STAGES,
    next_daily_job,
)


def _deps() -> dict[str, set[str]]:
    return {
        key.to_user_string(): {d.to_user_string() for d in ad.asset_deps[key]} for ad in defs.assets for key in ad.keys
    }


def test_every_asset_in_exactly_one_stage():
    assert len(ALL_ASSETS) == len(set(ALL_ASSETS))
    assert set(ALL_ASSETS) == set(_deps())
    assert set(ANALYSIS_ASSET_NAMES) == set(ANALYSES)
    models = {k.to_user_string() for ad in defs.assets for k in ad.keys if ad.group_names_by_key[k] == "models"}
    assert models == set(MODEL_ASSET_NAMES)


def test_stages_are_in_dependency_order():
    stage_of = {asset: i for i, stage in enumerate(STAGES) for asset in stage.assets}
    for asset, upstream in _deps().items():
        later = [u for u in upstream if stage_of[u] > stage_of[asset]]
        assert not later, f"{asset} ({STAGES[stage_of[asset]].name}) reads {later} of a later stage"


def test_daily_jobs_select_what_the_shape_says_and_chain():
    for job in DAILY_JOBS:
        selected = defs.resolve_job_def(job.name).asset_layer.selected_asset_keys
        assert {k.to_user_string() for k in selected} == set(job.assets), job.name
    chain, job = [DAILY_JOBS[0].name], DAILY_JOBS[0]
    while (job := next_daily_job(job.name)) is not None:
        chain.append(job.name)
    assert chain == [j.name for j in DAILY_JOBS]
    assert next_daily_job("retrain") is None
    retrain = defs.resolve_job_def("retrain").asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in retrain} == set(MODEL_ASSET_NAMES)
