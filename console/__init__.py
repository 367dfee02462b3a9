"""The ``llm-worker`` command and the operator tools around the worker.

It sits on top of the house: it imports :mod:`actors`, :mod:`gitworker`,
:mod:`middleware` and :mod:`llm_worker`, and none of them imports it.
"""
