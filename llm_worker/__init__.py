"""What the LLM job worker's actors and middleware share, one sub-package per concept.

Actors live in :mod:`actors`, middleware in :mod:`middleware`.  Inside, bottom up:
the top-level modules everything shares (:mod:`~llm_worker.settings`,
:mod:`~llm_worker.errors`, :mod:`~llm_worker.keys`, :mod:`~llm_worker.identifiers`,
:mod:`~llm_worker.identity`, :mod:`~llm_worker.text`), then
:mod:`~llm_worker.observability`, :mod:`~llm_worker.llm`, :mod:`~llm_worker.prompts`,
:mod:`~llm_worker.broker`, :mod:`~llm_worker.core`, :mod:`~llm_worker.fleet`,
:mod:`~llm_worker.jobs`, :mod:`~llm_worker.review`, and on top the context
(:mod:`~llm_worker.services`) the wiring builds.  Each imports only from its own
layer and those below; :mod:`~llm_worker.testing` stands aside and the runtime never
imports it.
"""
