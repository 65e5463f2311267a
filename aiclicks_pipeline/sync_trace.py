"""The sync as dlt's tools see it: one dlt trace for the whole sync.

A sync is many dlt runs (one per checkpoint, then the run history's final row: history.py),
and dlt keeps the trace of the last run only, so `dlt pipeline <name> trace` and the
dashboard's last execution would show the final row's small load instead of the sync. So the
sync folds the trace of each of its runs into one, as if it had been one dlt run, and saves
that as the pipeline's trace when it ends (stopped and failed syncs too; a killed one leaves
dlt's trace of its last run):

- one step per kind (extract, normalize, load, run), each over every load package of the sync:
  the normalize step's row counts are the sync's, the load step lists every package;
- a step starts when its first run did and lasts the time its runs took together (the steps
  of checkpoints interleave, so their wall-clock spans would overlap); the trace spans the
  sync, from its start;
- a failed step keeps its exception.

What it keeps while the sync goes stays small at thousands of domains: no package's copy of
the schema (every package gets the pipeline's schema when the trace is saved), and the jobs,
files and resource hints of the last `DETAILED_PACKAGES` packages only (as dlt's own merged
traces keep their last 100 steps); of the others their times, rows per table and state. 20
checkpoints (40 sandbox domains) made a 0.94 MB trace with every detail, 0.48 MB so.
"""

from datetime import datetime
from typing import Any, Dict, List, Optional

import pendulum
from dlt.pipeline.trace import PipelineStepTrace, PipelineTrace, save_trace

DETAILED_PACKAGES = 10
# what a package's step metrics hold per job, file and resource hint (dlt's asdict and the
# dashboard read them as empty as well)
DETAIL_METRICS = ("job_metrics", "hints", "dag", "inputs", "outputs")


class SyncTrace:
    def __init__(self, since: datetime) -> None:
        self.since = since  # when the sync started: a trace from before is another run's
        self.trace: Optional[PipelineTrace] = None
        self._folded: List[str] = []  # transaction ids of the runs folded in

    def add(self, pipeline: Any) -> None:
        """Folds in the dlt run that just ended (`pipeline.last_trace`), once."""
        new = pipeline.last_trace
        if new is None or new.transaction_id in self._folded or new.started_at < self.since:
            return
        self._folded.append(new.transaction_id)
        steps = _without_schemas(new.steps)
        if self.trace is None:
            self.trace = new._replace(steps=steps)
            return
        merged: Dict[str, PipelineStepTrace] = {step.step: step for step in self.trace.steps}
        for step in steps:
            merged[step.step] = _merged_step(merged[step.step], step) if step.step in merged else step
            info = merged[step.step].step_info
            if info is not None and step.step != "run" and len(info.load_packages) > DETAILED_PACKAGES:
                merged[step.step] = merged[step.step]._replace(
                    step_info=_without_details(info, -DETAILED_PACKAGES - 1)
                )
        _share_run_info(merged)
        self.trace = self.trace._replace(
            steps=list(merged.values()),
            finished_at=new.finished_at,
            resolved_config_values=new.resolved_config_values,
        )

    def save(self, pipeline: Any) -> None:
        """Makes the sync's trace the pipeline's last one, in memory and on disk."""
        if self.trace is None:
            return
        schema = pipeline.default_schema if pipeline.default_schema_name else None
        steps = {
            step.step: step._replace(step_info=_with_packages(step.step_info, schema))
            for step in self.trace.steps
        }
        _share_run_info(steps)
        # the run is the sync, from its start (asking /domains, planning) to its end
        self.trace = self.trace._replace(steps=list(steps.values()), started_at=pendulum.instance(self.since))
        pipeline._last_trace = self.trace
        save_trace(pipeline.working_dir, self.trace)


def _merged_step(done: PipelineStepTrace, new: PipelineStepTrace) -> PipelineStepTrace:
    return done._replace(
        finished_at=done.finished_at + (new.finished_at - new.started_at),
        step_info=_merged_info(done.step_info, new.step_info),
        step_exception=new.step_exception or done.step_exception,
        exception_traces=new.exception_traces or done.exception_traces,
    )


def _merged_info(done: Any, new: Any) -> Any:
    """Two step infos of one kind (ExtractInfo, NormalizeInfo, LoadInfo) as one over the load
    packages of both: dlt's step infos are made for several packages (a step that finishes
    pending ones)."""
    if done is None or new is None or type(done) is not type(new):
        return new if new is not None else done
    known = set(done.loads_ids)
    fields: Dict[str, Any] = {
        "loads_ids": done.loads_ids + [i for i in new.loads_ids if i not in known],
        "load_packages": done.load_packages + [p for p in new.load_packages if p.load_id not in known],
        "metrics": {**done.metrics, **new.metrics},
    }
    if "extract_data_info" in done._fields:
        fields["extract_data_info"] = done.extract_data_info + new.extract_data_info
    return done._replace(**fields)


def _without_details(info: Any, index: int) -> Any:
    """`info` with the jobs, files and hints of its package at `index` let go."""
    package = info.load_packages[index]
    packages = list(info.load_packages)
    packages[index] = package._replace(jobs={state: [] for state in package.jobs}, schema_update={})
    metrics = dict(info.metrics)
    if package.load_id in metrics:
        metrics[package.load_id] = [
            {key: type(value)() if key in DETAIL_METRICS else value for key, value in step.items()}
            for step in metrics[package.load_id]
        ]
    return info._replace(load_packages=packages, metrics=metrics)


def _without_schemas(steps: List[PipelineStepTrace]) -> List[PipelineStepTrace]:
    """The steps with their packages' schemas let go (a full schema per package and step)."""
    infos: Dict[int, Any] = {}
    slim = []
    for step in steps:
        info = step.step_info
        if info is not None and hasattr(info, "load_packages"):
            # the run step's info is the load step's: one object stays one object
            info = infos.setdefault(id(info), _with_packages(info, None))
        slim.append(step._replace(step_info=info))
    return slim


def _with_packages(info: Any, schema: Any) -> Any:
    if info is None or not hasattr(info, "load_packages"):
        return info
    return info._replace(load_packages=[p._replace(schema=schema) for p in info.load_packages])


def _share_run_info(steps: Dict[str, PipelineStepTrace]) -> None:
    """The run step reports the load step's info (a dlt run returns its load's): keep it the
    same object, so it is kept and pickled once."""
    if "run" in steps and "load" in steps:
        steps["run"] = steps["run"]._replace(step_info=steps["load"].step_info)
