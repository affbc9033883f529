"""The embedded local stack: the SAM template on moto's in-process AWS, no Docker (see stack.py)."""

from cogwh.localstack.errors import LocalStackError
from cogwh.localstack.handlers import FunctionSpec, LambdaContext
from cogwh.localstack.provision import ApiRoute, Schedule
from cogwh.localstack.stack import LocalStack

__all__ = ["ApiRoute", "FunctionSpec", "LambdaContext", "LocalStack", "LocalStackError", "Schedule"]
