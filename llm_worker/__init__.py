"""Support code of the LLM job worker: settings, clients, schemas and prompts.

Actors live in :mod:`actors`, middleware in :mod:`middleware`; everything they
share lives here.
"""
