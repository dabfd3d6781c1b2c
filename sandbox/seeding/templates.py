"""CloudFormation templates as the sandbox reads them before deploying: parsed (JSON, or YAML with
CloudFormation's short tags), and checked for what the emulator would deploy as something else
instead of refusing: intrinsic functions it does not evaluate (it passes them on as the value),
references to nothing (it passes the name on), conditions on pseudo parameters (it compares their
names), and transforms it cannot run. Everything CloudFormation itself refuses is left to it."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

from sandbox.seeding.checker import Checker, shown

PSEUDO_PARAMETERS = {"AWS::AccountId", "AWS::Region", "AWS::StackName", "AWS::StackId", "AWS::Partition",
                     "AWS::URLSuffix", "AWS::NoValue", "AWS::NotificationARNs"}
# What MiniStack's template engine evaluates (cfn/engine.py); Fn::Length and Fn::ForEach need the
# AWS::LanguageExtensions transform, as on AWS.
FUNCTIONS = {"Ref", "Condition", "Fn::GetAtt", "Fn::Sub", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::If",
             "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::FindInMap", "Fn::Base64", "Fn::ImportValue",
             "Fn::GetAZs", "Fn::Cidr", "Fn::ToJsonString", "Fn::Length"}
TRANSFORMS = {"AWS::LanguageExtensions", "AWS::Include"}
SECTIONS = {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Mappings",
            "Conditions", "Transform", "Resources", "Outputs"}
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")
_SHORT_TAGS = {"Ref": "Ref", "Condition": "Condition", "GetAtt": "Fn::GetAtt", **{
    name: f"Fn::{name}" for name in ("Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
                                     "FindInMap", "Base64", "ImportValue", "GetAZs", "Cidr", "ToJsonString",
                                     "Length", "Transform")}}


class TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt A.B, ...) as their long forms."""


def _short_tag(loader: TemplateLoader, suffix: str, node: yaml.Node) -> dict:
    name = _SHORT_TAGS.get(suffix)
    if name is None:
        raise yaml.constructor.ConstructorError(None, None, f"unknown tag !{suffix}", node.start_mark)
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


TemplateLoader.add_multi_constructor("!", _short_tag)
# Dates stay text, as CloudFormation reads them (AWSTemplateFormatVersion: 2010-09-09).
TemplateLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def read_template(path: Path) -> dict:
    """The template as a mapping; raises ValueError saying what is wrong with the file."""
    return read_text(path.read_text())


def read_text(text: str) -> dict:
    try:
        template = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, TemplateLoader)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"not a CloudFormation template (JSON or YAML): {exc}") from None
    if not isinstance(template, dict):
        raise ValueError("not a CloudFormation template: expected a mapping with Resources")
    return template


def functions(value: Any, where: str) -> Iterator[tuple[str, str, Any]]:
    """(path, function name, argument) of every intrinsic function call inside `value`."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref" or key == "Condition" or str(key).startswith("Fn::"):
                yield where, key, argument
        for key, item in value.items():
            yield from functions(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from functions(item, f"{where}[{i}]")


def check_template(c: Checker, template: dict, where: str, given: dict[str, Any]) -> None:
    """Reports (at `where`, the template's entry in sandbox.yaml) what the emulator would not deploy
    as written; `given` are the parameter values sandbox.yaml passes."""
    def fail(path: str, message: str) -> None:
        c.fail(where, f"{path}: {message}" if path else message)

    for key in sorted(set(template) - SECTIONS, key=str):
        fail(str(key), f"not a section of a CloudFormation template (expected: {', '.join(sorted(SECTIONS))})")
    transforms = template.get("Transform") or []
    for transform in transforms if isinstance(transforms, list) else [transforms]:
        if transform not in TRANSFORMS:
            fail("Transform", f"{shown(transform)} is not run by the emulator (it has no SAM or macro support): "
                              "deploy the template the transform produces (`sam build`, `cdk synth` output)")
    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        fail("Resources", "a template needs at least one resource")
        return
    parameters = template.get("Parameters") or {}
    if not isinstance(parameters, dict):
        fail("Parameters", "expected a mapping of parameter name: declaration")
        parameters = {}
    for name in sorted(set(given) - set(parameters), key=str):
        c.fail(f"{where}.parameters.{name}", f"the template declares no parameter {name!r} "
                                             f"(it has: {', '.join(sorted(parameters)) or 'none'})")
    for name, declaration in parameters.items():
        if name not in given and not (isinstance(declaration, dict) and "Default" in declaration):
            c.fail(f"{where}.parameters", f"parameter {name!r} has no Default in the template: give its value here")
    known = set(parameters) | set(resources) | PSEUDO_PARAMETERS
    for name, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            fail(f"Resources.{name}", "expected a mapping with Type (such as AWS::S3::Bucket) and Properties")
            continue
        depends = resource.get("DependsOn") or []
        for target in depends if isinstance(depends, list) else [depends]:
            if target not in resources:
                fail(f"Resources.{name}.DependsOn", f"Unresolved resource dependencies [{target}] in the "
                                                    "Resources block of the template")
    for section in ("Resources", "Outputs", "Conditions"):
        for path, name, argument in functions(template.get(section) or {}, section):
            _check_function(fail, path, name, argument, known, set(resources), section)


def _check_function(fail, path: str, name: str, argument: Any, known: set[str], resources: set[str],
                    section: str) -> None:
    if name not in FUNCTIONS:
        fail(path, f"{name} is not an intrinsic function the emulator evaluates: it would deploy the mapping "
                   f"itself as the value (it evaluates {', '.join(sorted(FUNCTIONS))})")
    elif name == "Ref" and isinstance(argument, str):
        if argument not in known:
            fail(path, f"Unresolved resource dependencies [{argument}] in the Resources block of the template")
        elif section == "Conditions" and argument in PSEUDO_PARAMETERS:
            fail(path, f"the emulator compares the name {argument!r}, not its value, in a condition: compare a "
                       "parameter instead (give it the value in sandbox.yaml)")
    elif name == "Fn::GetAtt":
        target = argument[0] if isinstance(argument, list) and argument else argument
        if isinstance(target, str) and target not in resources:
            fail(path, f"Fn::GetAtt names {target!r}, which is not a resource of the template")
    elif name == "Fn::Sub":
        text, variables = (argument[0], argument[1] if len(argument) > 1 else {}) \
            if isinstance(argument, list) and argument else (argument, {})
        if isinstance(text, str):
            for variable in _SUB_VARIABLE.findall(text):
                base = variable.split(".", 1)[0].strip()
                if base not in known and base not in (variables if isinstance(variables, dict) else {}):
                    fail(path, f"Fn::Sub uses ${{{variable}}}, which is no parameter, resource or pseudo "
                               "parameter: the emulator would put the name there")
