"""Jobs: what a job is and how one runs.

The job-type registry, the running :class:`~llm_worker.jobs.job.Job`, the actor's
arguments and the payload and result shapes, the job kinds the middleware report
through, the job's lease, the counters a job keeps in its message options, and the
call that asks the LLM for a job or a review turn.

May import: the top-level modules, :mod:`llm_worker.observability`,
:mod:`llm_worker.llm`, :mod:`llm_worker.prompts`, :mod:`llm_worker.fleet`,
:mod:`llm_worker.broker` and :mod:`llm_worker.core`.
"""
