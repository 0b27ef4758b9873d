"""The transform expression language, compiled to vectorised DuckDB SQL.

``compile_expression`` turns one expression over input columns into a value SQL
expression and an error SQL expression (see :mod:`.compiler`); ``catalogue`` lists the
documented functions and which of them the local server implements; ``register_udfs``
adds the Python functions compiled SQL may call to a DuckDB connection.
"""

from dsmsyncd.server.transforms.compiler import (
    ColumnInput,
    CompileContext,
    CompiledExpression,
    compile_expression,
)
from dsmsyncd.server.transforms.errors import ExpressionError
from dsmsyncd.server.transforms.functions import FunctionInfo, catalogue
from dsmsyncd.server.transforms.udf import register_udfs

__all__ = [
    "ColumnInput",
    "CompileContext",
    "CompiledExpression",
    "ExpressionError",
    "FunctionInfo",
    "catalogue",
    "compile_expression",
    "register_udfs",
]
