"""The vpcpeer Pulumi program (run by `pulumi up` in this folder).

It only reads config, builds the components and exports; see infra/entry.py.
"""

from infra.entry import main

main()
