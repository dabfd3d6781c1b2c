"""CloudFormation's AWS::ECS::TaskDefinition registered as AWS registers it: through ECS's
RegisterTaskDefinition, so a template's definition meets the same refusals as an API call's.

MiniStack's provisioner writes a template's definition straight into the ECS store, with its nested
keys left in the template's PascalCase: none of ECS's (or Fargate's) refusals applied, the sandbox's
refusal of what reaches into the host skipped (MiniStack's Docker path still honours
``Volumes[].Host.SourcePath`` and ``LinuxParameters.Capabilities.Add``), and secrets, dependsOn,
health checks and most linux parameters silently lost at run time. Here the properties are turned
into the RegisterTaskDefinition request, key by key, along ECS's own request model (botocore's), and
sent to the emulator's RegisterTaskDefinition (ecs_fidelity's, with its refusals). A refusal fails
the resource with the handler message CloudFormation gives, ECS's ClientException inside it.
"""

import json
import logging

logger = logging.getLogger("cfn.fidelity")

TASK_DEFINITION = "AWS::ECS::TaskDefinition"
# Template property names that are not the request member's name in other letter case.
_RENAMED = {("ProxyConfiguration", "ProxyConfigurationProperties"): "properties"}

provisioners = None  # the patched module, once apply() ran
ecs = None  # ministack.services.ecs, whose RegisterTaskDefinition ecs_fidelity patched


class PropertyError(ValueError):
    """A property ECS's request has no place for, or of a type it cannot take."""


def _request_shape():
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    model = ServiceModel(Loader().load_service_model("ecs", "service-2"), "ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


def register_request(properties, shape=None):
    """The RegisterTaskDefinition request a template's AWS::ECS::TaskDefinition properties stand for."""
    return _convert(properties, shape or _request_shape(), "TaskDefinition")


def _convert(value, shape, where):
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise PropertyError(f"#/{where}: expected type: JSONObject, found: {type(value).__name__}")
        members = {name.lower(): name for name in shape.members}
        request = {}
        for key, item in value.items():
            member = _RENAMED.get((where.rsplit("/", 1)[-1], key)) or members.get(str(key).lower())
            if member is None:
                raise PropertyError(f"#/{where}: extraneous key [{key}] is not permitted")
            request[member] = _convert(item, shape.members[member], f"{where}/{key}")
        return request
    if kind == "list":
        if not isinstance(value, list):
            raise PropertyError(f"#/{where}: expected type: JSONArray, found: {type(value).__name__}")
        return [_convert(item, shape.member, f"{where}/{i}") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise PropertyError(f"#/{where}: expected type: JSONObject, found: {type(value).__name__}")
        return {str(key): _convert(item, shape.value, f"{where}/{key}") for key, item in value.items()}
    # Templates carry scalars loosely (a YAML number for a string, "true" for a boolean), as
    # CloudFormation accepts them.
    if kind == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if isinstance(value, (int, float)) else value
    if kind in ("integer", "long"):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        return value
    if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def handler_message(code, message):
    """What CloudFormation records for a resource whose handler ECS refused."""
    return (f'Resource handler returned message: "Invalid request provided: Create TaskDefinition: {message} '
            f'(Service: AmazonECS; Status Code: 400; Error Code: {code})" (HandlerErrorCode: InvalidRequest)')


def create_task_definition(logical_id, props, stack_name):
    """Replaces MiniStack's create handler (and, through it, its update's new revisions)."""
    try:
        request = register_request(props)
    except PropertyError as exc:
        raise ValueError(f"Properties validation failed for resource {logical_id} with message: [{exc}]") from None
    request.setdefault("family", f"{stack_name}-{logical_id}")
    status, _, body = ecs._ACTION_MAP["RegisterTaskDefinition"](request)
    answer = json.loads(body)
    if status >= 400:
        raise ValueError(handler_message(answer.get("__type", "ClientException"), answer.get("message", "")))
    arn = answer["taskDefinition"]["taskDefinitionArn"]
    return arn, {"TaskDefinitionArn": arn}


def apply():
    """Install the handler into MiniStack's CloudFormation provisioners (idempotent). After
    ecs_fidelity.apply(): the handler calls RegisterTaskDefinition through the action table it patched."""
    global provisioners, ecs
    from ministack.services import ecs as ecs_module
    from ministack.services.cloudformation import provisioners as module

    if provisioners is module:
        return
    provisioners, ecs = module, ecs_module
    # The update handler registers a changed definition's next revision through the module's
    # _ecs_task_def_create, looked up when it runs (contract.py pins that).
    module._ecs_task_def_create = create_task_definition
    module._RESOURCE_HANDLERS[TASK_DEFINITION]["create"] = create_task_definition
    logger.info("CloudFormation %s registered through RegisterTaskDefinition", TASK_DEFINITION)
