"""SNS topics, policies and subscriptions, SQS queues, EventBridge rules and targets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from infra.emulation._aws import as_int, found, ignoring_missing, short_hash, tag_list
from infra.emulation.errors import EmulatedRolloutError
from infra.emulation.registry import Created, PreviewIdentity, PreviewNames, ResourceType, register

if TYPE_CHECKING:
    from infra.emulation.engine import Context


@register
class Topic(ResourceType):
    """The topic's ID is its ARN, as in the provider."""

    token = "aws:sns/topic:Topic"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        attributes = {"KmsMasterKeyId": i["kmsMasterKeyId"]} if i.get("kmsMasterKeyId") else {}
        arn = ctx.sns.create_topic(Name=i.get("name") or f"{name}-{short_hash(name)}", Attributes=attributes,
                                   Tags=tag_list(ctx.tags(i)))["TopicArn"]
        return arn, {"arn": arn, "name": arn.rsplit(":", 1)[1]}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.sns.get_topic_attributes(TopicArn=resource_id))

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        arn = names.arn("sns", names.physical)
        return PreviewIdentity(id=arn, arn=arn)


@register
class TopicPolicy(ResourceType):
    """The policy is an attribute of its topic: setting it overwrites, and it goes with the topic."""

    token = "aws:sns/topicPolicy:TopicPolicy"
    overwrite_in_place = True

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        ctx.sns.set_topic_attributes(TopicArn=i["arn"], AttributeName="Policy", AttributeValue=i["policy"])
        return i["arn"], {}

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        """Nothing to remove apart from the topic; the attribute keeps its last value until then."""


@register
class TopicSubscription(ResourceType):
    """A subscription cannot change its endpoint: a new address is Unsubscribe + Subscribe."""

    token = "aws:sns/topicSubscription:TopicSubscription"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        arn = ctx.sns.subscribe(TopicArn=i["topic"], Protocol=i["protocol"], Endpoint=i["endpoint"],
                                ReturnSubscriptionArn=True)["SubscriptionArn"]
        return arn, {"arn": arn}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.sns.get_subscription_attributes(SubscriptionArn=resource_id)["Attributes"])

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ignoring_missing(lambda: ctx.sns.unsubscribe(SubscriptionArn=resource_id))


@register
class Queue(ResourceType):
    """The queue's ID is its URL, as in the provider."""

    token = "aws:sqs/queue:Queue"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        attributes = {}
        if i.get("messageRetentionSeconds"):
            attributes["MessageRetentionPeriod"] = str(as_int(i["messageRetentionSeconds"]))
        if i.get("sqsManagedSseEnabled"):
            attributes["SqsManagedSseEnabled"] = "true"
        queue_name = i.get("name") or f"{name}-{short_hash(name)}"
        url = ctx.sqs.create_queue(QueueName=queue_name, Attributes=attributes, tags=ctx.tags(i))["QueueUrl"]
        arn = ctx.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, {"arn": arn, "url": url, "name": queue_name}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.sqs.get_queue_attributes(QueueUrl=resource_id))

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        return PreviewIdentity(
            id=f"https://sqs.{names.region}.amazonaws.com/{names.account_id}/{names.physical}",
            arn=names.arn("sqs", names.physical),
        )


@register
class EventRule(ResourceType):
    token = "aws:cloudwatch/eventRule:EventRule"

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        rule = i.get("name") or f"{name}-{short_hash(name)}"
        arn = ctx.events.put_rule(Name=rule, ScheduleExpression=i["scheduleExpression"], State=i.get("state", "ENABLED"),
                                  Description=i.get("description", ""), Tags=tag_list(ctx.tags(i)))["RuleArn"]
        return rule, {"arn": arn, "name": rule}

    def exists(self, ctx: Context, resource_id: str) -> bool:
        return found(lambda: ctx.events.describe_rule(Name=resource_id))

    def preview_identity(self, names: PreviewNames) -> PreviewIdentity:
        return PreviewIdentity(id=names.physical, arn=names.arn("events", f"rule/{names.physical}"))


@register
class EventTarget(ResourceType):
    """PutTargets creates and overwrites a target of the rule, keyed by its target ID."""

    token = "aws:cloudwatch/eventTarget:EventTarget"
    overwrite_in_place = True

    def create(self, ctx: Context, name: str, i: dict[str, Any]) -> Created:
        target = {"Id": i["targetId"], "Arn": i["arn"]}
        if i.get("input"):
            target["Input"] = i["input"]
        response = ctx.events.put_targets(Rule=i["rule"], Targets=[target])
        if response.get("FailedEntryCount"):
            raise EmulatedRolloutError(f"{name}: PutTargets failed: {response['FailedEntries']}")
        return f"{i['rule']}-{i['targetId']}", {}

    def delete(self, ctx: Context, resource_id: str, inputs: dict[str, Any]) -> None:
        ignoring_missing(lambda: ctx.events.remove_targets(Rule=inputs["rule"], Ids=[inputs["targetId"]]))
