"""A reference git worker for local repositories.

It implements the two actors the review loop sends to on ``git_queue``:
``fetch_context`` (answered from a local checkout at ``GIT_REPO_PATH``) and
``post_comment`` (printed and kept in Redis).  Run it with
``dramatiq gitworker.worker``; it is separate from the LLM workers.
"""
