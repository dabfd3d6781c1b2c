"""IAM's policy language (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html):
the checks IAM makes of a policy document, so a document it would refuse is reported before anything
is seeded (PutRolePolicy refuses it after the role and its other policies were already changed)."""
from __future__ import annotations

import datetime
import difflib
import json
import re
from typing import Any

from sandbox.seeding.checker import Checker, found

POLICY_VERSION = "2012-10-17"
POLICY_FIELDS = {"Version", "Id", "Statement"}
STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                    "NotResource", "Condition"}
_ACTION = re.compile(r"^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$")
_SID = re.compile(r"^[A-Za-z0-9]+$")


def check_policy_document(c: Checker, document: Any, where: str) -> bool:
    """An inline role policy as IAM checks it (PutRolePolicy refuses a document that fails these
    checks, after the role and its other policies were already changed). True when it is valid."""
    before = len(c.problems)
    if not isinstance(document, dict):
        c.fail(where, f"expected an IAM policy document (a mapping with Version \"{POLICY_VERSION}\" and Statement), "
                      f"found {found(document)}")
        return False
    document = c.mapping(document, where, POLICY_FIELDS, {"Version", "Statement"})
    version = document.get("Version")
    if "Version" in document and version != POLICY_VERSION:
        quote = " (unquoted, YAML reads it as a date: quote it)" if isinstance(version, datetime.date) else ""
        c.fail(f"{where}.Version", f"expected \"{POLICY_VERSION}\", the current policy language, found "
                                   f"{found(version)}{quote}")
    if "Id" in document:
        c.text(document["Id"], f"{where}.Id")
    statements = document.get("Statement")
    sids: set[str] = set()
    if isinstance(statements, dict):  # IAM takes one statement without the list around it
        _check_statement(c, statements, f"{where}.Statement", sids)
    elif isinstance(statements, list) and statements:
        for j, statement in enumerate(statements):
            _check_statement(c, statement, f"{where}.Statement[{j}]", sids)
    elif "Statement" in document:
        c.fail(f"{where}.Statement", "expected a non-empty list of statements (or a single statement mapping), "
                                     f"found {found(statements)}")
    return len(c.problems) == before


def _check_statement(c: Checker, statement: Any, where: str, sids: set[str]) -> None:
    if not isinstance(statement, dict):
        c.fail(where, f"expected a statement (a mapping with Effect, Action and Resource), found {found(statement)}")
        return
    statement = c.mapping(statement, where, STATEMENT_FIELDS, {"Effect"})
    for key in ("Principal", "NotPrincipal"):
        if key in statement:
            c.fail(f"{where}.{key}", "not allowed in a role's own policy (an identity policy: the role is the "
                                     "principal, and IAM refuses the document); who may assume the role goes in "
                                     "the role's trusted_services / trusted_accounts")
    if "Sid" in statement:
        sid = c.text(statement["Sid"], f"{where}.Sid", _SID, "ASCII letters and digits only")
        if sid in sids:
            c.fail(f"{where}.Sid", f"duplicate Sid {sid!r}; each statement's Sid must be unique in the policy")
        elif sid:
            sids.add(sid)
    effect = statement.get("Effect")
    if "Effect" in statement and effect not in ("Allow", "Deny"):
        c.fail(f"{where}.Effect", "expected Allow or Deny (IAM takes them only so capitalised), "
                                  f"found {found(effect)}")
    _check_policy_strings(c, statement, where, ("Action", "NotAction"), _ACTION,
                          "\"service:Action\" such as \"s3:GetObject\" (wildcards * and ? allowed), or \"*\"")
    _check_policy_strings(c, statement, where, ("Resource", "NotResource"), _RESOURCE,
                          "an ARN such as \"arn:aws:s3:::bucket/*\", or \"*\"")
    if "Condition" in statement:
        _check_condition(c, statement["Condition"], f"{where}.Condition")


_RESOURCE = re.compile(r"^(\*|arn:[^:\s]+:[^:\s]*:[^:\s]*:[^:\s]*:\S+)$")


def _check_policy_strings(c: Checker, statement: dict, where: str, keys: tuple[str, str], pattern: re.Pattern,
                          hint: str) -> None:
    """Action/NotAction or Resource/NotResource: exactly one of the two, a string or a non-empty list of them."""
    given = [key for key in keys if key in statement]
    if not given:
        c.fail(f"{where}.{keys[0]}", f"required field is missing: give {keys[0]} (or {keys[1]}), {hint}")
        return
    if len(given) == 2:
        c.fail(f"{where}.{keys[1]}", f"give {keys[0]} or {keys[1]}, not both (IAM refuses the statement)")
    for key in given:
        value = statement[key]
        if isinstance(value, str):
            c.text(value, f"{where}.{key}", pattern, hint)
        elif isinstance(value, list) and value:
            for k, item in enumerate(value):
                c.text(item, f"{where}.{key}[{k}]", pattern, hint)
        else:
            c.fail(f"{where}.{key}", f"expected {hint}, or a non-empty list of them; found {found(value)}")


# IAM's condition operators, case-sensitive; each but Null may end in IfExists
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
CONDITION_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
    "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
    "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan",
    "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress",
    "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"}
_CONDITION_OPERATOR = re.compile(r"^(?:ForAllValues:|ForAnyValue:)?(?:Null|(\w+?)(?:IfExists)?)$")
_CONDITION_KEY = re.compile(r"^[A-Za-z0-9-]+:\S+$")


def _check_condition(c: Checker, condition: Any, where: str) -> None:
    usage = ("a mapping of operator: {condition key: value or list of values}, "
             "e.g. StringEquals: {aws:RequestedRegion: us-east-1}")
    if not isinstance(condition, dict) or not condition:
        c.fail(where, f"expected {usage}; found {found(condition)}")
        return
    for operator, block in condition.items():
        owhere = f"{where}.{operator}"
        m = _CONDITION_OPERATOR.match(operator) if isinstance(operator, str) else None
        if not m or (m.group(1) is not None and m.group(1) not in CONDITION_OPERATORS):
            close = difflib.get_close_matches(str(operator), sorted(CONDITION_OPERATORS), n=1)
            c.fail(owhere, "is not an IAM condition operator (they are case-sensitive: StringEquals, ArnLike, Bool, "
                           f"Null, ...{'; did you mean ' + close[0] + '?' if close else ''})")
        if not isinstance(block, dict) or not block:
            c.fail(owhere, f"expected a mapping of condition key: value or list of values, found {found(block)}")
            continue
        for key, value in block.items():
            values = value if isinstance(value, list) else [value]
            if not isinstance(key, str) or not _CONDITION_KEY.match(key):
                c.fail(f"{owhere}.{key}", "is not a condition key: give its service prefix, as in aws:SourceAccount "
                                          "or s3:prefix (IAM refuses keys without one)")
            elif not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
                c.fail(f"{owhere}.{key}", f"expected text, a number or true/false, or a non-empty list of them; "
                                          f"found {found(value)}")



def decoded(value: Any) -> dict:
    """A policy document as IAM returns it: a URL-encoded JSON string on real AWS, a mapping once boto3
    has parsed it."""
    if isinstance(value, str):
        from urllib.parse import unquote
        return json.loads(unquote(value))
    return value
