"""The stack's security properties as a Pulumi policy pack:

    pulumi up --policy-pack infra/policy_pack      (needs the pulumi CLI; it builds the venv)

Each rule of infra/policy_rules.py is one mandatory stack policy: the same functions the
tests run over the offline preview, here over the resources the engine is about to deploy.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: infra and lambda_pkg

from pulumi_policy import EnforcementLevel, PolicyPack, StackValidationPolicy  # noqa: E402

from infra.policy_rules import RULES, Resource  # noqa: E402


def _policy(name, rule):
    def validate(args, report_violation):
        resources = [Resource(r.resource_type, r.name, dict(r.props)) for r in args.resources]
        for violation in rule(resources):
            report_violation(violation)

    return StackValidationPolicy(name=name.replace("_", "-"), description=(rule.__doc__ or name).strip(),
                                 validate=validate)


PolicyPack(name="vpcpeer-security", enforcement_level=EnforcementLevel.MANDATORY,
           policies=[_policy(name, rule) for name, rule in RULES.items()])
