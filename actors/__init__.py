"""The LLM job actors.  ``dramatiq actors`` runs them; ``periodiq actors`` schedules.

Producers import this package and call, for example::

    from actors import intent_classify
    intent_classify.send(1, 42, {"text": "remind me to call mum at 6"})

Importing it reads the broker settings and connects to nothing.
"""

from .broker import broker
from .email_extract import email_extract
from .followup import followup
from .image_tag import image_tag
from .intent import intent_classify
from .review import review_chunk
from .sweeper import sweep_expired
from .task_match import task_match

#: Every life-organiser job actor by its public name.
JOB_ACTORS = {
    actor.actor_name: actor
    for actor in (image_tag, intent_classify, followup, task_match, email_extract)
}

__all__ = [
    "JOB_ACTORS",
    "broker",
    "email_extract",
    "followup",
    "image_tag",
    "intent_classify",
    "review_chunk",
    "sweep_expired",
    "task_match",
]
