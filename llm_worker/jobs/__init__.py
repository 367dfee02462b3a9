"""Jobs: what a job is and how one runs.

The job-type registry (each job type declared once, in its actor's module), the
running :class:`~llm_worker.jobs.job.Job`, the actor's arguments, the bases of
payload and result shapes, the job kinds the middleware report through, the job's
lease, the counters a job keeps in its message options, the call that asks the LLM
for a job or a review turn and what that call cost, expiring a job once, and the sweep.

May import: every layer below it (the top-level modules, :mod:`llm_worker.observability`,
:mod:`llm_worker.llm`, :mod:`llm_worker.prompts`, :mod:`llm_worker.broker`,
:mod:`llm_worker.core`, :mod:`llm_worker.fleet`); the context
(:mod:`llm_worker.services`) is handed in and named for type checks only.
"""
