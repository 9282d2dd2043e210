"""Authorization refusals during work: a topic write, a topic read, a consumer group.

aiokafka raises ``TopicAuthorizationFailedError`` (from the metadata wait or a batch on a
send, from a fetch or a commit on a read) and ``GroupAuthorizationFailedError`` (from
``getmany``/``getone`` and commits); a consumer whose topic the metadata reports as not
authorized is never assigned its partitions and fetches nothing, with no error at all
(:func:`unauthorized_topics` finds it). Here each becomes a
:class:`~bus.errors.KafkaAuthorizationError` that names the principal, the topic or group,
and what the catalogue would have to say for it to be allowed.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from bus.contract.names import TOPIC_PATTERN
from bus.errors import KafkaAuthorizationError, PublishAuthorizationError

__all__ = [
    "AUTHORIZATION_ERRORS",
    "authorization_error",
    "group_refused",
    "read_refused",
    "refused_topics",
    "sasl_user",
    "unauthorized_topics",
    "who",
    "write_refused",
]

#: The aiokafka errors an ACL causes.
AUTHORIZATION_ERRORS = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
_APPLY = "'spbe-bus catalog apply'"
_PLAN = "'spbe-bus catalog plan'"


def who(principal: str | None) -> str:
    """The principal as a message names it: its user name, or the anonymous user."""
    return principal or "User:ANONYMOUS (a client without a SASL user)"


def sasl_user(config: object) -> str | None:
    """The SASL user name of a client config's ``security`` setting; ``None`` without SASL
    (the broker then sees ``User:ANONYMOUS``) or without a ``security`` setting."""
    security = getattr(config, "security", None)
    if security is None or not getattr(security, "sasl", False):
        return None
    user = getattr(security, "username", None)
    return user if isinstance(user, str) else None


def refused_topics(exc: BaseException) -> tuple[str, ...]:
    """The topics a ``TopicAuthorizationFailedError`` names (one, or a set of them)."""
    found: set[str] = set()
    for arg in exc.args:
        if isinstance(arg, str):
            found.add(arg)
        elif isinstance(arg, Iterable):
            found.update(a for a in arg if isinstance(a, str))
    return tuple(sorted(found))


def _domain_steward(topic: str) -> str:
    match = TOPIC_PATTERN.fullmatch(topic)
    return f"the steward of the {match['domain']} domain" if match else "the topic's steward"


def write_refused(
    topic: str, *, principal: str | None, steward: str | None
) -> PublishAuthorizationError:
    """``principal`` may not write ``topic``, which only ``steward``'s applications may.

    ``steward`` comes from the data standard (the schema's ``spbe.steward``); without it
    the message names the domain of the topic's name.
    """
    stewards = f"its steward ({steward})" if steward else _domain_steward(topic)
    owner = f"a {steward} application" if steward else "an application of the steward"
    return PublishAuthorizationError(
        f"{who(principal)} may not write {topic}: only applications of {stewards} may",
        fix=f"publish with the credentials {_APPLY} issued to {owner}; if {who(principal)} "
        f"is one, its grant is not applied yet: run {_APPLY} ({_PLAN} shows the ACLs)",
        principal=principal,
        operation="write",
        resource=topic,
    )


def read_refused(topic: str, *, principal: str | None, subscriber: str) -> KafkaAuthorizationError:
    """``principal`` may not read ``topic``: its subscription is not (or no longer) granted.

    Kafka cannot tell a subscription that never was from one past its ``expires`` date or
    one the catalogue has but ``apply`` has not granted yet: the message names all three.
    """
    other = (
        f"; these are the credentials of {principal}, not of the subscriber {subscriber}"
        if principal and principal != subscriber
        else ""
    )
    return KafkaAuthorizationError(
        f"{who(principal)} may not read {topic}: no subscription of {subscriber} to {topic} is "
        f"active: missing from the catalogue, expired, or not applied yet ({_PLAN} shows "
        f"which){other}",
        fix=f"add the subscription to the catalogue (or renew its expires date) and run "
        f"{_APPLY}; a subscriber reads with the credentials issued to its own id",
        principal=principal,
        operation="read",
        resource=topic,
    )


def group_refused(group: str, *, principal: str | None) -> KafkaAuthorizationError:
    """``principal`` may not use the consumer group ``group`` (another subscriber's)."""
    theirs = (
        f", or set subscriber_id to {principal}, the subscriber these credentials belong to"
        if principal and principal != group
        else f"; if {group} is in the catalogue, run {_APPLY}"
    )
    return KafkaAuthorizationError(
        f"{who(principal)} may not use the consumer group {group}: a subscriber reads only "
        "with its own group, named after its subscriber id",
        fix=f"run the subscriber {group} with the credentials {_APPLY} issued to {group}{theirs}",
        principal=principal,
        operation="use",
        resource=group,
    )


def authorization_error(
    exc: BaseException,
    *,
    principal: str | None,
    what: str,
    subscriber: str | None = None,
    group: str | None = None,
    steward: str | None = None,
) -> KafkaAuthorizationError | None:
    """The named error of an aiokafka authorization error met while doing ``what``.

    ``what`` is ``write``, ``read`` or a phrase ("start the registry"). ``None`` when ``exc``
    is not an authorization error.
    """
    if isinstance(exc, TopicAuthorizationFailedError):
        topics = refused_topics(exc) or ("(a topic aiokafka did not name)",)
        if what == "write":
            return write_refused(topics[0], principal=principal, steward=steward)
        if what == "read" and subscriber is not None:
            return read_refused(topics[0], principal=principal, subscriber=subscriber)
        return KafkaAuthorizationError(
            f"{who(principal)} may not use the topic {', '.join(topics)} to {what}",
            fix=f"use the credentials the catalogue grants this (run {_APPLY}; {_PLAN} shows "
            "the ACLs), or the operator's for operator commands",
            principal=principal,
            operation=what,
            resource=", ".join(topics),
        )
    if isinstance(exc, GroupAuthorizationFailedError):
        named = refused_topics(exc)
        name = group or (named[0] if named else "(a group aiokafka did not name)")
        return group_refused(name, principal=principal)
    if isinstance(exc, ClusterAuthorizationFailedError | TransactionalIdAuthorizationFailed):
        return KafkaAuthorizationError(
            f"{who(principal)} may not {what}: the cluster refused it ({type(exc).__name__}; "
            "an idempotent producer must be allowed to write one of its topics, an operator "
            "command needs the operator's rights)",
            fix=f"publish with the credentials {_APPLY} issued to an application of the "
            "steward, which may write the steward's topics; run operator commands with the "
            "operator's credentials (the credentials file of 'spbe-bus kafka up --secure')",
            principal=principal,
            operation=what,
            resource="cluster",
        )
    return None


def unauthorized_topics(consumer: object) -> frozenset[str]:
    """The topics a consumer's last metadata answer said it may not describe.

    aiokafka keeps them on its cluster metadata and does not raise: such a topic is never
    assigned, so a subscriber would wait on it for ever. (aiokafka has no public accessor;
    an older or newer layout yields an empty set, never an error.)
    """
    client = getattr(consumer, "_client", None)
    cluster = getattr(client, "cluster", None)
    topics = getattr(cluster, "unauthorized_topics", None)
    return frozenset(t for t in topics or () if isinstance(t, str))
