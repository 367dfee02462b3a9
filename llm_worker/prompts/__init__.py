"""Every prompt text in one place: how user content is rendered as data, the prompt
profiles (one per kind of model) with their per-job tasks and examples, and the
code review's prompts.

May import: the top-level modules and :mod:`llm_worker.llm`.
"""
