"""Create a template's resources in moto from the template's own properties.

Each supported type has a creator that resolves the properties it uses, creates the resource through
boto3 (bound to the mock) and registers the resource's Ref value and attributes with the template, so
resources created later can refer to it. Types the local stack has no use for (IAM policies, alarms,
dashboards, log groups, API Gateway, layers, permissions, ...) get plausible Ref values and ARNs and
nothing else; any other type is refused by name."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets
import string
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from cogwh.localstack import asl
from cogwh.localstack.errors import LocalStackError
from cogwh.localstack.handlers import FunctionSpec
from cogwh.localstack.template import NAME_PROPERTIES, Template, as_text, topological_order

log = logging.getLogger("cogwh.localstack")

# Resource types with no local behaviour: Ref and a synthetic ARN only.
IGNORED_PREFIXES: Final = (
    "AWS::IAM::",
    "AWS::CloudWatch::",
    "AWS::Logs::",
    "AWS::ApiGateway::",
    "AWS::ApiGatewayV2::",
    "AWS::Serverless::Api",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::KMS::",
    "AWS::XRay::",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::ResourceGroups::",
    "AWS::ApplicationInsights::",
    "AWS::CloudFormation::WaitConditionHandle",
)

# The properties of serverless resources the local stack reads (dependencies come from these only:
# Policies, Role and Layers are never resolved, so they cannot make a cycle).
FUNCTION_PROPERTIES: Final = frozenset(
    {
        "FunctionName",
        "CodeUri",
        "InlineCode",
        "Handler",
        "Runtime",
        "Timeout",
        "MemorySize",
        "Architectures",
        "Environment",
        "Events",
        "Description",
        "PackageType",
    }
)
STATE_MACHINE_PROPERTIES: Final = frozenset(
    {
        "Name",
        "StateMachineName",
        "Type",
        "StateMachineType",
        "DefinitionUri",
        "Definition",
        "DefinitionString",
        "DefinitionS3Location",
        "DefinitionSubstitutions",
        "Events",
    }
)

_GSI_KEYS: Final = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput")
_LSI_KEYS: Final = ("IndexName", "KeySchema", "Projection")
_QUEUE_ATTRIBUTES: Final = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "RedrivePolicy",
    "RedriveAllowPolicy",
)
_TARGET_KEYS: Final = (
    "Id",
    "Arn",
    "Input",
    "InputPath",
    "InputTransformer",
    "RoleArn",
    "SqsParameters",
    "DeadLetterConfig",
    "RetryPolicy",
)
_TRUST: Final = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass(frozen=True)
class ApiRoute:
    """An Api/HttpApi event of a function: the HTTP route a gateway would send to it."""

    kind: str  # "Api" (REST) or "HttpApi"
    method: str  # upper case; "ANY" for any
    path: str
    function: str  # the function's logical id
    api: str  # the API's logical id (ServerlessRestApi / ServerlessHttpApi when implicit)


@dataclass(frozen=True)
class Schedule:
    """A schedule the local stack never fires by itself: ``LocalStack.fire_schedule`` does."""

    owner: str  # logical id of the function, state machine or rule
    event_name: str  # the SAM event's name ("" for an AWS::Events::Rule)
    expression: str
    input: Any  # what the target receives; None for EventBridge's "Scheduled Event"
    rule_arn: str


def tiny_zip() -> bytes:
    """The code moto stores for each function; the real handler runs in-process."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "cogwh local stack: the handler runs in-process\n")
    return buffer.getvalue()


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class Provisioner:
    def __init__(self, template: Template, client: Callable[[str], Any]) -> None:
        self.t = template
        self._client = client
        self.functions: dict[str, FunctionSpec] = {}
        self.state_machines: dict[str, str] = {}
        self.schedules: list[Schedule] = []
        self.api_routes: list[ApiRoute] = []
        self.created: list[str] = []
        self._zip = tiny_zip()

    # -- planning ------------------------------------------------------------------------------

    def plan(self) -> list[str]:
        """The active resources in creation order (refusing unsupported types first)."""
        active = [lid for lid in self.t.resources if self.t.is_active(lid)]
        edges: dict[str, set[str]] = {}
        for lid in active:
            kind = self.t.resource_type(lid)
            props = self.t.properties(lid)
            if kind in _CREATORS:
                if kind == "AWS::Serverless::Function":
                    used: Any = {k: v for k, v in props.items() if k in FUNCTION_PROPERTIES}
                elif kind.endswith("StateMachine"):
                    used = {k: v for k, v in props.items() if k in STATE_MACHINE_PROPERTIES}
                else:
                    used = props
            elif kind.startswith(IGNORED_PREFIXES):
                name_property = NAME_PROPERTIES.get(kind, ("", 0))[0]
                used = props.get(name_property)
            else:
                raise LocalStackError(f"Resources.{lid}: type {kind} is not supported by the local stack")
            edges[lid] = self.t.dependencies(lid, used)
        self._register_implicit(active)
        return topological_order(active, edges)

    def _register_implicit(self, active: list[str]) -> None:
        """SAM's implicit resources: the APIs behind Api/HttpApi events and each function's role."""
        for lid in active:
            events = self.t.properties(lid).get("Events") or {}
            kinds = {str(e.get("Type")) for e in events.values() if isinstance(e, dict)}
            for kind, implicit in (("Api", "ServerlessRestApi"), ("HttpApi", "ServerlessHttpApi")):
                if kind in kinds and implicit not in self.t.resources:
                    api_id = self._synthetic_id(implicit)
                    self.t.register(
                        implicit,
                        api_id,
                        {
                            "RootResourceId": self._synthetic_id(implicit + "Root"),
                            "ApiEndpoint": f"https://{api_id}.execute-api.{self.t.region}.amazonaws.com",
                        },
                    )

    def _synthetic_id(self, logical_id: str) -> str:
        return hashlib.sha256(f"{self.t.stack_name}/{logical_id}".encode()).hexdigest()[:10]

    # -- creating ------------------------------------------------------------------------------

    def create(self, logical_id: str) -> None:
        kind = self.t.resource_type(logical_id)
        creator = _CREATORS.get(kind)
        try:
            if creator is None:
                self._ignored(logical_id, kind)
            else:
                creator(self, logical_id)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise LocalStackError(
                f"Resources.{logical_id} ({kind}): moto refused it: "
                f"{error.get('Code')}: {error.get('Message')}"
            ) from exc
        self.created.append(logical_id)

    def _props(self, logical_id: str, keys: frozenset[str] | None = None) -> dict[str, Any]:
        props = self.t.properties(logical_id)
        if keys is not None:
            props = {k: v for k, v in props.items() if k in keys}
        resolved = self.t.resolve(props, f"Resources.{logical_id}.Properties")
        assert isinstance(resolved, dict)
        return resolved

    def _ignored(self, logical_id: str, kind: str) -> None:
        name = self.t.physical_name(logical_id)
        partition, region, account = self.t.partition, self.t.region, self.t.account_id
        service = kind.split("::")[1].lower()
        ref: Any = name
        attrs: dict[str, Any] = {"Arn": f"arn:{partition}:{service}:{region}:{account}:{name}"}
        if kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            ref = f"arn:{partition}:lambda:{region}:{account}:layer:{name}:1"
            attrs = {}
        elif kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::ApiGateway::RestApi"):
            ref = self._synthetic_id(logical_id)
            attrs = {
                "RootResourceId": self._synthetic_id(logical_id + "Root"),
                "ApiEndpoint": f"https://{ref}.execute-api.{region}.amazonaws.com",
            }
        elif kind == "AWS::IAM::ManagedPolicy":
            ref = f"arn:{partition}:iam::{account}:policy/{name}"
            attrs = {"PolicyArn": ref}
        elif kind == "AWS::Logs::LogGroup":
            attrs = {"Arn": f"arn:{partition}:logs:{region}:{account}:log-group:{name}:*"}
        elif kind == "AWS::KMS::Key":
            ref = self._synthetic_id(logical_id)
            attrs = {"Arn": f"arn:{partition}:kms:{region}:{account}:key/{ref}", "KeyId": ref}
        elif kind == "AWS::CloudWatch::Alarm":
            attrs = {"Arn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}"}
        log.debug("Resources.%s (%s): not created locally", logical_id, kind)
        self.t.register(logical_id, ref, attrs)

    def _role(self, name: str, trust: str = _TRUST) -> str:
        iam = self._client("iam")
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"])

    def _implicit_role(self, logical_id: str) -> str:
        """The role SAM creates for a function or state machine (``<LogicalId>Role``); moto's Lambda
        wants one that exists. IAM is not enforced locally, so its policies are left out."""
        role_id = f"{logical_id}Role"
        arn = self._role(f"{self.t.stack_name}-{role_id}"[:55] + "-" + self._synthetic_id(role_id)[:8])
        if role_id not in self.t.resources:
            self.t.register(role_id, arn.rsplit("/", 1)[1], {"Arn": arn})
        return arn

    # -- DynamoDB ------------------------------------------------------------------------------

    def create_table(self, logical_id: str) -> None:
        props = self._props(logical_id)
        where = f"Resources.{logical_id}.Properties"
        name = self.t.physical_name(logical_id)
        billing = str(props.get("BillingMode", "PROVISIONED"))
        params: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props.get("KeySchema"),
            "AttributeDefinitions": props.get("AttributeDefinitions"),
            "BillingMode": billing,
        }
        if not params["KeySchema"] or not params["AttributeDefinitions"]:
            raise LocalStackError(f"{where}: a table needs KeySchema and AttributeDefinitions")
        if billing == "PROVISIONED":
            if "ProvisionedThroughput" not in props:
                raise LocalStackError(f"{where}: BillingMode PROVISIONED needs ProvisionedThroughput")
            params["ProvisionedThroughput"] = _throughput(props["ProvisionedThroughput"])
        if props.get("GlobalSecondaryIndexes"):
            params["GlobalSecondaryIndexes"] = [
                _gsi(index, billing) for index in props["GlobalSecondaryIndexes"]
            ]
        if props.get("LocalSecondaryIndexes"):
            params["LocalSecondaryIndexes"] = [
                {k: v for k, v in index.items() if k in _LSI_KEYS} for index in props["LocalSecondaryIndexes"]
            ]
        stream = props.get("StreamSpecification")
        if stream:
            params["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        sse = props.get("SSESpecification")
        if sse:
            params["SSESpecification"] = {"Enabled": _bool(sse.get("SSEEnabled", False))}
            for key in ("SSEType", "KMSMasterKeyId"):
                if key in sse:
                    params["SSESpecification"][key] = sse[key]
        for key in ("TableClass", "Tags"):
            if key in props:
                params[key] = props[key]
        if "DeletionProtectionEnabled" in props:
            params["DeletionProtectionEnabled"] = _bool(props["DeletionProtectionEnabled"])
        dynamodb = self._client("dynamodb")
        table = dynamodb.create_table(**params)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and _bool(ttl.get("Enabled", False)):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and _bool(pitr.get("PointInTimeRecoveryEnabled", False)):
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        attrs = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attrs["StreamArn"] = table["LatestStreamArn"]
        self.t.register(logical_id, name, attrs)

    def create_simple_table(self, logical_id: str) -> None:
        props = self._props(logical_id)
        name = self.t.physical_name(logical_id)
        key = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        kind = {"String": "S", "Number": "N", "Binary": "B"}.get(str(key.get("Type")), "S")
        params: dict[str, Any] = {
            "TableName": name,
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": kind}],
        }
        if props.get("ProvisionedThroughput"):
            params["BillingMode"] = "PROVISIONED"
            params["ProvisionedThroughput"] = _throughput(props["ProvisionedThroughput"])
        else:
            params["BillingMode"] = "PAY_PER_REQUEST"
        table = self._client("dynamodb").create_table(**params)["TableDescription"]
        self.t.register(logical_id, name, {"Arn": table["TableArn"]})

    # -- S3, SQS, SNS, Secrets Manager, IAM ----------------------------------------------------

    def create_bucket(self, logical_id: str) -> None:
        props = self._props(logical_id)
        name = self.t.physical_name(logical_id)
        s3 = self._client("s3")
        params: dict[str, Any] = {"Bucket": name}
        if self.t.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.t.region}
        s3.create_bucket(**params)
        versioning = props.get("VersioningConfiguration")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
        encryption = props.get("BucketEncryption")
        if encryption:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        # CloudFormation's property name differs from the S3 API's
                        {
                            (
                                "ApplyServerSideEncryptionByDefault"
                                if k == "ServerSideEncryptionByDefault"
                                else k
                            ): v
                            for k, v in rule.items()
                        }
                        for rule in encryption["ServerSideEncryptionConfiguration"]
                    ]
                },
            )
        block = props.get("PublicAccessBlockConfiguration")
        if block:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration={k: _bool(v) for k, v in block.items()}
            )
        notifications = props.get("NotificationConfiguration") or {}
        if _bool((notifications.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled", False)):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        rules = (props.get("LifecycleConfiguration") or {}).get("Rules") or []
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
            )
        if props.get("Tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})
        partition = self.t.partition
        self.t.register(
            logical_id,
            name,
            {
                "Arn": f"arn:{partition}:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{self.t.region}.amazonaws.com",
                "DualStackDomainName": f"{name}.s3.dualstack.{self.t.region}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{self.t.region}.amazonaws.com",
            },
        )

    def create_queue(self, logical_id: str) -> None:
        props = self._props(logical_id)
        name = self.t.physical_name(logical_id)
        attributes: dict[str, str] = {}
        for key in _QUEUE_ATTRIBUTES:
            if key in props:
                value = props[key]
                attributes[key] = json.dumps(value) if isinstance(value, dict) else as_text(value, key)
        sqs = self._client("sqs")
        params: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if props.get("Tags"):
            params["tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        url = str(sqs.create_queue(**params)["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.t.register(logical_id, url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def create_topic(self, logical_id: str) -> None:
        props = self._props(logical_id)
        name = self.t.physical_name(logical_id)
        params: dict[str, Any] = {"Name": name}
        if _bool(props.get("FifoTopic", False)):
            params["Attributes"] = {"FifoTopic": "true"}
        arn = str(self._client("sns").create_topic(**params)["TopicArn"])
        self.t.register(logical_id, arn, {"TopicArn": arn, "TopicName": name})

    def create_secret(self, logical_id: str) -> None:
        props = self._props(logical_id)
        name = self.t.physical_name(logical_id)
        value = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if value is None and generate:
            value = _generate_secret(generate)
        params: dict[str, Any] = {"Name": name}
        if value is not None:
            params["SecretString"] = as_text(value, f"Resources.{logical_id}.Properties.SecretString")
        for key in ("Description", "KmsKeyId", "Tags"):
            if key in props:
                params[key] = props[key]
        arn = str(self._client("secretsmanager").create_secret(**params)["ARN"])
        self.t.register(logical_id, arn, {"Id": arn})

    def create_iam_role(self, logical_id: str) -> None:
        props = self.t.properties(logical_id)
        name = self.t.physical_name(logical_id)
        trust = props.get("AssumeRolePolicyDocument")
        # the trust policy may refer to anything; IAM is not enforced locally, so it is not resolved
        usable = isinstance(trust, dict) and not _has_intrinsic(trust)
        arn = self._role(name, json.dumps(trust) if usable else _TRUST)
        role = self._client("iam").get_role(RoleName=name)["Role"]
        self.t.register(logical_id, name, {"Arn": arn, "RoleId": role["RoleId"]})

    # -- EventBridge ---------------------------------------------------------------------------

    def create_event_bus(self, logical_id: str) -> None:
        self._props(logical_id)
        name = self.t.physical_name(logical_id)
        arn = str(self._client("events").create_event_bus(Name=name)["EventBusArn"])
        self.t.register(logical_id, name, {"Arn": arn, "Name": name})

    def create_rule(self, logical_id: str) -> None:
        props = self._props(logical_id)
        name = self.t.physical_name(logical_id)
        targets = [{k: v for k, v in t.items() if k in _TARGET_KEYS} for t in props.get("Targets") or []]
        arn = self._put_rule(
            name,
            bus=props.get("EventBusName"),
            pattern=props.get("EventPattern"),
            schedule=props.get("ScheduleExpression"),
            state=props.get("State"),
            targets=targets,
        )
        if props.get("ScheduleExpression"):
            self.schedules.append(Schedule(logical_id, "", str(props["ScheduleExpression"]), None, arn))
        self.t.register(logical_id, name, {"Arn": arn})

    def _put_rule(
        self,
        name: str,
        *,
        bus: Any,
        pattern: Any,
        schedule: Any,
        state: Any,
        targets: list[dict[str, Any]],
    ) -> str:
        events = self._client("events")
        params: dict[str, Any] = {"Name": name, "State": str(state or "ENABLED")}
        if bus:
            params["EventBusName"] = str(bus)
        if pattern:
            params["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if schedule:
            params["ScheduleExpression"] = str(schedule)
        arn = str(events.put_rule(**params)["RuleArn"])
        if targets:
            for target in targets:
                if "Input" in target and not isinstance(target["Input"], str):
                    target["Input"] = json.dumps(target["Input"])
            kwargs: dict[str, Any] = {"Rule": name, "Targets": targets}
            if bus:
                kwargs["EventBusName"] = str(bus)
            events.put_targets(**kwargs)
        return arn

    def _event_rule(self, owner: str, event_name: str, props: Mapping[str, Any], target_arn: str) -> None:
        """A SAM EventBridgeRule/CloudWatchEvent event: a rule targeting the function or state machine."""
        target: dict[str, Any] = {"Id": (props.get("Target") or {}).get("Id") or f"{owner}{event_name}"[:64]}
        target["Arn"] = target_arn
        for key in ("Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy"):
            if key in props:
                target[key] = props[key]
        name = str(props.get("RuleName") or f"{self.t.stack_name}-{owner}{event_name}"[:64])
        self._put_rule(
            name,
            bus=props.get("EventBusName"),
            pattern=props.get("Pattern"),
            schedule=None,
            state=props.get("State") or ("ENABLED" if _bool(props.get("Enabled", True)) else "DISABLED"),
            targets=[target],
        )

    def _schedule_event(self, owner: str, event_name: str, kind: str, props: Mapping[str, Any]) -> None:
        expression = str(props.get("Schedule") or props.get("ScheduleExpression") or "")
        where = f"Resources.{owner}.Properties.Events.{event_name}.Properties.Input"
        payload: Any = None
        if props.get("Input") is not None:
            try:
                payload = json.loads(str(props["Input"]))
            except ValueError:
                raise LocalStackError(f"{where}: not JSON") from None
        elif kind == "ScheduleV2":
            payload = {}
        rule_name = f"{self.t.stack_name}-{owner}{event_name}"[:64]
        rule_arn = f"arn:{self.t.partition}:events:{self.t.region}:{self.t.account_id}:rule/{rule_name}"
        self.schedules.append(Schedule(owner, event_name, expression, payload, rule_arn))

    # -- Lambda --------------------------------------------------------------------------------

    def create_function(self, logical_id: str) -> None:
        props = self._props(logical_id, FUNCTION_PROPERTIES)
        where = f"Resources.{logical_id}.Properties"
        if "InlineCode" in props or str(props.get("PackageType", "Zip")) == "Image":
            raise LocalStackError(
                f"{where}: only CodeUri + Handler functions run locally (no InlineCode, no images)"
            )
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str):
            raise LocalStackError(f"{where}.CodeUri: the local stack needs a local directory")
        code_dir = (self.t.root / code_uri).resolve()
        if not code_dir.is_dir():
            raise LocalStackError(f"{where}.CodeUri: {code_uri!r} is not a directory under {self.t.root}")
        runtime = str(props.get("Runtime") or "")
        if not runtime.startswith("python"):
            raise LocalStackError(
                f"{where}.Runtime: {runtime or 'none'} (the local stack runs python handlers only)"
            )
        handler = props.get("Handler")
        if not isinstance(handler, str):
            raise LocalStackError(f"{where}.Handler: missing")
        variables = (props.get("Environment") or {}).get("Variables") or {}
        environment = {k: as_text(v, f"{where}.Environment.Variables.{k}") for k, v in variables.items()}
        name = self.t.physical_name(logical_id)
        timeout = int(props.get("Timeout", 3))
        memory = int(props.get("MemorySize", 128))
        params: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": runtime,
            "Role": self._implicit_role(logical_id),
            "Handler": handler,
            "Code": {"ZipFile": self._zip},
            "Timeout": timeout,
            "MemorySize": memory,
            "Environment": {"Variables": environment},
        }
        if props.get("Architectures"):
            params["Architectures"] = props["Architectures"]
        if props.get("Description"):
            params["Description"] = str(props["Description"])
        arn = str(self._client("lambda").create_function(**params)["FunctionArn"])
        spec = FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=arn,
            code_dir=code_dir,
            handler=handler,
            runtime=runtime,
            timeout=timeout,
            memory_mb=memory,
            environment=environment,
        )
        spec.handler_file()  # refuse a Handler that names no file now, not at the first invocation
        self.functions[logical_id] = spec
        self.t.register(logical_id, name, {"Arn": arn})
        for event_name, event in (props.get("Events") or {}).items():
            self._function_event(spec, event_name, event)

    def _function_event(self, spec: FunctionSpec, event_name: str, event: Mapping[str, Any]) -> None:
        kind = str(event.get("Type"))
        props = event.get("Properties") or {}
        where = f"Resources.{spec.logical_id}.Properties.Events.{event_name}"
        if kind in ("DynamoDB", "SQS"):
            source = props.get("Stream") if kind == "DynamoDB" else props.get("Queue")
            if not isinstance(source, str):
                raise LocalStackError(f"{where}: needs {'Stream' if kind == 'DynamoDB' else 'Queue'}")
            params: dict[str, Any] = {"EventSourceArn": source, "FunctionName": spec.name}
            if kind == "DynamoDB":
                params["StartingPosition"] = str(props.get("StartingPosition", "LATEST"))
            for key in ("BatchSize", "FunctionResponseTypes"):
                if key in props:
                    params[key] = int(props[key]) if key == "BatchSize" else props[key]
            if "Enabled" in props:
                params["Enabled"] = _bool(props["Enabled"])
            if props.get("FilterCriteria"):
                log.warning("%s: FilterCriteria is not applied locally (moto delivers every record)", where)
            self._client("lambda").create_event_source_mapping(**params)
        elif kind in ("Schedule", "ScheduleV2"):
            self._schedule_event(spec.logical_id, event_name, kind, props)
        elif kind in ("Api", "HttpApi"):
            api_key = "RestApiId" if kind == "Api" else "ApiId"
            implicit = "ServerlessRestApi" if kind == "Api" else "ServerlessHttpApi"
            raw = self.t.properties(spec.logical_id)["Events"][event_name].get("Properties") or {}
            named = raw.get(api_key)
            api = str(named["Ref"]) if isinstance(named, dict) and "Ref" in named else str(named or implicit)
            method = str(props.get("Method", "any")).upper()
            path = str(props.get("Path", "$default"))
            self.api_routes.append(ApiRoute(kind, method, path, spec.logical_id, api))
        elif kind in ("EventBridgeRule", "CloudWatchEvent"):
            self._event_rule(spec.logical_id, event_name, props, spec.arn)
        else:
            raise LocalStackError(f"{where}: event type {kind} is not supported by the local stack")

    # -- Step Functions ------------------------------------------------------------------------

    def create_state_machine(self, logical_id: str) -> None:
        props = self._props(logical_id, STATE_MACHINE_PROPERTIES)
        where = f"Resources.{logical_id}"
        text, source = self._definition_text(logical_id, props)
        where = f"{where} ({source})"
        text = asl.substitute(text, props.get("DefinitionSubstitutions") or {}, where)
        definition = asl.parse(text, where)
        asl.check(definition, where)
        name = self.t.physical_name(logical_id)
        kind = str(props.get("Type") or props.get("StateMachineType") or "STANDARD")
        sfn = self._client("stepfunctions")
        try:
            created = sfn.create_state_machine(
                name=name, definition=text, roleArn=self._implicit_role(logical_id), type=kind
            )
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            raise LocalStackError(f"{where}: the definition is invalid: {message}") from exc
        arn = str(created["stateMachineArn"])
        self.state_machines[logical_id] = arn
        self.t.register(logical_id, arn, {"Arn": arn, "Name": name})
        for event_name, event in (props.get("Events") or {}).items():
            kind = str(event.get("Type"))
            event_props = event.get("Properties") or {}
            if kind in ("EventBridgeRule", "CloudWatchEvent"):
                self._event_rule(logical_id, event_name, event_props, arn)
            elif kind in ("Schedule", "ScheduleV2"):
                self._schedule_event(logical_id, event_name, kind, event_props)
            else:
                raise LocalStackError(
                    f"Resources.{logical_id}.Properties.Events.{event_name}: event type {kind} "
                    "is not supported by the local stack"
                )

    def _definition_text(self, logical_id: str, props: Mapping[str, Any]) -> tuple[str, str]:
        where = f"Resources.{logical_id}.Properties"
        uri = props.get("DefinitionUri")
        if uri is not None:
            if not isinstance(uri, str):
                raise LocalStackError(f"{where}.DefinitionUri: the local stack needs a local file")
            path = (self.t.root / uri).resolve()
            try:
                return path.read_text(encoding="utf-8"), uri
            except OSError as exc:
                raise LocalStackError(f"{where}.DefinitionUri: cannot read {uri} ({exc.strerror})") from exc
        if isinstance(props.get("DefinitionString"), str):
            return str(props["DefinitionString"]), "DefinitionString"
        if isinstance(props.get("Definition"), dict):
            return json.dumps(props["Definition"]), "Definition"
        raise LocalStackError(f"{where}: needs DefinitionUri, Definition or DefinitionString (a local one)")


def _throughput(value: Mapping[str, Any]) -> dict[str, int]:
    return {k: int(value[k]) for k in ("ReadCapacityUnits", "WriteCapacityUnits")}


def _gsi(index: Mapping[str, Any], billing: str) -> dict[str, Any]:
    out = {k: v for k, v in index.items() if k in _GSI_KEYS}
    if billing == "PROVISIONED" and "ProvisionedThroughput" in out:
        out["ProvisionedThroughput"] = _throughput(out["ProvisionedThroughput"])
    else:
        out.pop("ProvisionedThroughput", None)
    return out


def _has_intrinsic(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k == "Ref" or k.startswith("Fn::") for k in value) or any(
            _has_intrinsic(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(_has_intrinsic(v) for v in value)
    return False


def _generate_secret(spec: Mapping[str, Any]) -> str:
    length = int(spec.get("PasswordLength", 32))
    alphabet = string.ascii_letters + string.digits
    if not _bool(spec.get("ExcludePunctuation", False)):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    excluded = str(spec.get("ExcludeCharacters", ""))
    alphabet = "".join(c for c in alphabet if c not in excluded)
    password = "".join(secrets.choice(alphabet) for _ in range(length))
    template = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if template and key:
        document = json.loads(str(template))
        document[str(key)] = password
        return json.dumps(document)
    return password


_CREATORS: Final[dict[str, Callable[[Provisioner, str], None]]] = {
    "AWS::DynamoDB::Table": Provisioner.create_table,
    "AWS::Serverless::SimpleTable": Provisioner.create_simple_table,
    "AWS::S3::Bucket": Provisioner.create_bucket,
    "AWS::SQS::Queue": Provisioner.create_queue,
    "AWS::SNS::Topic": Provisioner.create_topic,
    "AWS::SecretsManager::Secret": Provisioner.create_secret,
    "AWS::IAM::Role": Provisioner.create_iam_role,
    "AWS::Events::EventBus": Provisioner.create_event_bus,
    "AWS::Events::Rule": Provisioner.create_rule,
    "AWS::Serverless::Function": Provisioner.create_function,
    "AWS::Serverless::StateMachine": Provisioner.create_state_machine,
    "AWS::StepFunctions::StateMachine": Provisioner.create_state_machine,
}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """One CloudFormation lifecycle rule as the S3 API takes it (the property names differ)."""
    out: dict[str, Any] = {"ID": str(rule.get("Id") or ""), "Status": str(rule.get("Status") or "Enabled")}
    out["Filter"] = {"Prefix": str(rule.get("Prefix") or "")}
    if rule.get("ExpirationInDays") is not None:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if isinstance(noncurrent, dict) and noncurrent.get("NoncurrentDays") is not None:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["NoncurrentDays"])}
    return out
