"""vpcpeer traffic analyzer: the code deployed as the AWS Lambda.

Only the standard library and boto3 may be imported here, so the package runs unchanged
inside the Lambda runtime and on the embedded default.
"""
