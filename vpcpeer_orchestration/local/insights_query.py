"""A pure evaluator for the subset of the CloudWatch Logs Insights query language vpcpeer uses.

moto's Logs Insights honours ``fields``, ``sort`` and ``limit`` and silently ignores
``filter``, ``stats`` and ``parse``, so a grouped query run on the embedded AWS returns raw
events instead of groups. This module parses a query and evaluates it over log events with
the semantics AWS documents, so the embedded endpoint can answer ``GetQueryResults`` exactly.
Whatever lies outside the subset raises ``InsightsQueryError`` naming the construct and its
character offset: nothing is ever ignored.

Supported (keywords, commands and function names are case-insensitive; field names are not):

* commands separated by ``|``, ``#`` comments to the end of the line;
* ``fields expr [as name], ...`` computes fields and chooses the displayed ones;
* ``filter <boolean expression>``;
* ``stats agg(...) [as name], ... [by expr [as name], ...]``; at most two ``stats`` (the
  second aggregates the rows of the first and may only reference the fields the first
  defines); aggregates ``count(*)``/``count()``, ``count(expr)``, ``count_distinct``,
  ``sum``, ``min``, ``max``, ``avg``, and arithmetic over aggregates
  (``sum(bytes) / count(*)``);
* ``sort field [asc|desc], ...`` (AWS's natural order: non-numbers before numbers);
* ``limit [any] N``;
* boolean ``and``/``or``/``not``, parentheses, ``= != < <= > >=``, ``[not] in [...]``,
  ``[not] like "substring"|/regex/``, ``=~ /regex/``; arithmetic ``+ - * / %``;
* string literals in single or double quotes, numbers, `` `quoted field names` ``;
* functions ``isIpv4InSubnet(f, "cidr")``, ``isValidIpV4``, ``ispresent``, ``isempty``,
  ``fromMillis``, ``toMillis``, ``bin(period)`` (ms, s, m, h, d, w units), ``strlen``,
  ``tolower``, ``toupper``, ``concat``, ``substr(text, start[, length])`` (from 0), ``abs``, ``floor``, ``ceil``.

Discovered fields: every event has ``@timestamp``, ``@message``, ``@logStream``, ``@log``,
``@ingestionTime`` (when given); a message in the default VPC flow-log (v2) format is split
into the fields CloudWatch discovers for flow logs, camelCase as Logs Insights names them
(``version accountId interfaceId srcAddr dstAddr srcPort dstPort protocol packets bytes start
end action logStatus``). Values that look like numbers compare numerically.

Results are shaped like ``GetQueryResults``: rows of ``{"field", "value"}`` cells, values as
strings (integers without ``.0``, booleans ``1``/``0``, timestamps
``YYYY-MM-DD HH:MM:SS.mmm``), null values left out; non-aggregated rows carry an ``@ptr``.

Evaluation is one pass over the events with dict-based grouping; memory is bounded by the
distinct groups (and, for ``sort``, by the rows the sort can still return).

Where AWS documents nothing, this evaluator chooses: ``sort`` without a direction is
ascending; null values sort first ascending (last descending); events are returned newest
first when a query has neither ``stats`` nor ``sort``; stats groups come in first-seen order;
``stats`` over no events gives no rows; comparisons with a missing field are false (``!=``
included); ``fields`` after the last ``stats`` chooses the displayed fields as it does for
events; ``@log`` is the event's ``logGroupName``.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_SORT_DESCENDING",
    "FLOW_LOG_FIELDS",
    "MAX_RESULT_ROWS",
    "MAX_STATS_COMMANDS",
    "InsightsQueryError",
    "Query",
    "QueryResult",
    "parse_query",
    "run_query",
]

# AWS returns at most 10,000 rows (StartQuery's ``limit`` is at most 10,000).
MAX_RESULT_ROWS = 10_000
# "If you omit limit, the query defaults to returning up to 10,000 log events."
DEFAULT_LIMIT = 10_000
# "A query can have a maximum of two stats commands."
MAX_STATS_COMMANDS = 2
# AWS does not document the order of a ``sort`` without ``asc``/``desc``; ascending assumed.
DEFAULT_SORT_DESCENDING = False

# The default (v2) flow-log fields as Logs Insights discovers them, in record order.
FLOW_LOG_FIELDS = (
    "version", "accountId", "interfaceId", "srcAddr", "dstAddr", "srcPort", "dstPort",
    "protocol", "packets", "bytes", "start", "end", "action", "logStatus",
)

# Commands of the language this evaluator does not implement (named in the error).
UNSUPPORTED_COMMANDS = frozenset({
    "parse", "dedup", "display", "pattern", "diff", "unmask", "anomaly", "unnest", "lookup",
    "join", "filterindex", "source", "addtotals",
})


class InsightsQueryError(ValueError):
    """A query outside the supported subset, or malformed; ``position`` is a character offset."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.reason = message
        self.position = position
        super().__init__(message if position is None else f"{message} at offset {position}")


# ---------------------------------------------------------------------------------------
# Values


class _Time(int):
    """A timestamp in epoch milliseconds (compares as a number, displays as a date)."""

    __slots__ = ()


def _format_time(ms: int) -> str:
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}"


_NUMBER_TEXT = re.compile(r"-?(?:\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _num(value: Any) -> int | float | None:
    """The number a value stands for, or None (AWS compares numeric-looking text as numbers)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):  # bool and _Time included
        return int(value) if isinstance(value, bool) else value
    if isinstance(value, str):
        if value.isdigit() and value.isascii():  # the common case: a flow-log count or port
            return int(value)
        match = _NUMBER_TEXT.fullmatch(value)
        if match is None:
            return None
        if match.group(1) is None and match.group(2) is None and "." not in value:
            return int(value)
        return float(value)
    return None


def _text(value: Any) -> str:
    """A value as GetQueryResults shows it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, _Time):
        return _format_time(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    return str(value)


_CHUNK = re.compile(r"\d+|\D+")


def _sort_key(value: Any) -> tuple:
    """AWS's natural order: nulls, then non-numbers (digit runs by length then value), then numbers."""
    if value is None:
        return (-1,)
    number = _num(value)
    if number is not None:
        return (1, number)
    text = _text(value)
    # A digit run is keyed ("0", 0, len, value): against a non-digit run its "0" orders it by
    # Unicode as any digit would (no non-digit character lies between "0" and "9").
    return (0, tuple(("0", 0, len(c), int(c)) if c[0].isdigit() and c.isascii() else (c,) for c in _CHUNK.findall(text)))


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return na == nb
    return _text(a) == _text(b)


def _order(a: Any, b: Any) -> int | None:
    """-1/0/1, numerically when both are numbers, else as text; None when either is null."""
    if a is None or b is None:
        return None
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    ta, tb = _text(a), _text(b)
    return (ta > tb) - (ta < tb)


_IPV4 = re.compile(r"(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})", re.ASCII)


@functools.lru_cache(maxsize=1 << 16)
def _ipv4(text: Any) -> int | None:
    """A dotted-quad IPv4 address as an integer, or None (no leading zeros, as AWS)."""
    match = _IPV4.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    a, b, c, d = (int(g) for g in match.groups())
    if a > 255 or b > 255 or c > 255 or d > 255:
        return None
    return a << 24 | b << 16 | c << 8 | d


def _parse_cidr(text: str, position: int) -> tuple[int, int]:
    address, slash, prefix = text.partition("/")
    base = _ipv4(address)
    if base is None or not slash or not (prefix.isascii() and prefix.isdigit()) or int(prefix) > 32:
        raise InsightsQueryError(f"isIpv4InSubnet needs an IPv4 CIDR such as \"10.0.0.0/16\", not {text!r}", position)
    mask = (0xFFFFFFFF << (32 - int(prefix))) & 0xFFFFFFFF
    return base & mask, mask


# ---------------------------------------------------------------------------------------
# Syntax tree: small immutable nodes that compare and hash by value (plain slotted classes,
# cheaper to define than dataclasses: the module must import fast).


class _Node:
    __slots__: tuple[str, ...] = ()

    def __init__(self, *values: Any) -> None:
        if len(values) != len(self.__slots__):
            raise TypeError(f"{type(self).__name__} takes {len(self.__slots__)} values")
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__slots__)})"


class Lit(_Node):
    __slots__ = ("value",)


class Ref(_Node):
    __slots__ = ("name", "pos")


class Duration(_Node):
    __slots__ = ("ms", "text", "pos")


class Call(_Node):
    __slots__ = ("name", "args", "pos")  # name: lower-case function name


class Agg(_Node):
    __slots__ = ("name", "arg", "pos")  # arg: None for count(*) / count()


class Arith(_Node):
    __slots__ = ("op", "left", "right")


class Neg(_Node):
    __slots__ = ("operand",)


class Compare(_Node):
    __slots__ = ("op", "left", "right")


class InList(_Node):
    __slots__ = ("negated", "operand", "values")


class Like(_Node):
    __slots__ = ("negated", "operand", "pattern", "regex", "pos")


class BoolOp(_Node):
    __slots__ = ("op", "left", "right")  # op: "and" / "or"


class Not(_Node):
    __slots__ = ("operand",)


class Item(_Node):
    """One ``expr [as name]`` of fields, stats or by."""

    __slots__ = ("expr", "name", "pos")


class FieldsCommand(_Node):
    __slots__ = ("items", "pos")


class FilterCommand(_Node):
    __slots__ = ("expr", "pos")


class StatsCommand(_Node):
    __slots__ = ("aggregates", "by", "pos")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.by) + tuple(i.name for i in self.aggregates)


class SortKey(_Node):
    __slots__ = ("name", "descending", "pos")


class SortCommand(_Node):
    __slots__ = ("keys", "pos")


class LimitCommand(_Node):
    __slots__ = ("count", "pos")


Command = FieldsCommand | FilterCommand | StatsCommand | SortCommand | LimitCommand


@dataclass(frozen=True)
class Query:
    """A parsed query: its text and its commands in pipeline order."""

    text: str
    commands: tuple[Command, ...]

    @property
    def stats(self) -> tuple[StatsCommand, ...]:
        return tuple(c for c in self.commands if isinstance(c, StatsCommand))


@dataclass
class QueryResult:
    """What GetQueryResults returns for a completed query."""

    results: list[list[dict[str, str]]]
    statistics: dict[str, float]


# ---------------------------------------------------------------------------------------
# Lexer


class _Token(_Node):
    __slots__ = ("kind", "text", "value", "pos")  # kind: ident quoted string number duration regex op eof

    @property
    def end(self) -> int:
        return self.pos + len(self.text)

    def word(self) -> str | None:
        return self.text.lower() if self.kind == "ident" else None


_LEX = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<comment>\#[^\n]*)"
    r"|(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?P<unit>[A-Za-z]+)?"
    r"|(?P<ident>[A-Za-z_@$][A-Za-z0-9_.@$]*)"
    r"|(?P<quoted>`[^`\n]*`)"
    r"|(?P<string>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')"
    r"|(?P<op>!=|<=|>=|=~|==|[|,()\[\]=<>+\-*/%])"
)
_REGEX_LITERAL = re.compile(r"/((?:[^/\\\n]|\\.)*)/")
_ESCAPE = re.compile(r"\\(.)")

_DURATION_UNITS = {
    "ms": 1, "msec": 1, "millisecond": 1,
    "s": 1000, "sec": 1000, "second": 1000,
    "m": 60_000, "min": 60_000, "minute": 60_000,
    "h": 3_600_000, "hr": 3_600_000, "hour": 3_600_000,
    "d": 86_400_000, "day": 86_400_000,
    "w": 604_800_000, "week": 604_800_000,
}
_CALENDAR_UNITS = {"mo", "mon", "month", "q", "qtr", "quarter", "y", "yr", "year"}


def _unit_ms(unit: str, pos: int) -> int:
    key = unit.lower()
    if key not in _DURATION_UNITS and key not in _CALENDAR_UNITS and len(key) > 2 and key.endswith("s"):
        key = key[:-1]
    if key in _DURATION_UNITS:
        return _DURATION_UNITS[key]
    if key in _CALENDAR_UNITS:
        raise InsightsQueryError(f"calendar time unit {unit!r} (month, quarter, year) is not supported", pos)
    raise InsightsQueryError(f"unknown time unit {unit!r}", pos)


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        previous = tokens[-1] if tokens else None
        if text[i] == "/" and previous is not None and (previous.word() == "like" or previous.text == "=~"):
            match = _REGEX_LITERAL.match(text, i)
            if match is None:
                raise InsightsQueryError("unterminated regular expression", i)
            tokens.append(_Token("regex", match.group(0), match.group(1), i))
            i = match.end()
            continue
        match = _LEX.match(text, i)
        if match is None:
            if text[i] in "\"'":
                raise InsightsQueryError("unterminated string literal", i)
            if text[i] == "`":
                raise InsightsQueryError("unterminated `quoted` field name", i)
            raise InsightsQueryError(f"unexpected character {text[i]!r}", i)
        kind = match.lastgroup if match.lastgroup != "unit" else "number"
        source = match.group(0)
        if kind == "number":
            number_text, unit = match.group("number"), match.group("unit")
            if unit:
                ms = float(number_text) * _unit_ms(unit, i + len(number_text))
                if ms <= 0 or not float(ms).is_integer():
                    raise InsightsQueryError(f"period {source!r} is not a whole positive number of milliseconds", i)
                tokens.append(_Token("duration", source, int(ms), i))
            else:
                value = float(number_text) if any(c in number_text for c in ".eE") else int(number_text)
                tokens.append(_Token("number", source, value, i))
        elif kind == "ident":
            tokens.append(_Token("ident", source, source, i))
        elif kind == "quoted":
            tokens.append(_Token("quoted", source, source[1:-1], i))
        elif kind == "string":
            tokens.append(_Token("string", source, _ESCAPE.sub(lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), source[1:-1]), i))
        elif kind == "op":
            if source == "==":
                raise InsightsQueryError("operator '==' is not supported (use '=')", i)
            tokens.append(_Token("op", source, source, i))
        i = match.end()
    tokens.append(_Token("eof", "", None, n))
    return tokens


# ---------------------------------------------------------------------------------------
# Parser

_AGGREGATES = {"count", "count_distinct", "sum", "min", "max", "avg"}
# Functions of the language outside the subset (reported as unsupported, not unknown).
_UNSUPPORTED_FUNCTIONS = {
    "pct", "stddev", "earliest", "latest", "sortsfirst", "sortslast", "dateceil", "datefloor",
    "coalesce", "replace", "strcontains", "trim", "ltrim", "rtrim", "jsonparse",
    "isvalidip", "isvalidipv6", "isipinsubnet", "isipv6insubnet", "if", "tonumber", "greatest", "least",
    "log", "sqrt", "pow", "datediff", "unmask", "split",
}
# name -> (arity: a count, or (fewest, most) with None for any number; returns boolean)
_FUNCTIONS: dict[str, tuple[int | tuple[int, int | None], bool]] = {
    "isipv4insubnet": (2, True),
    "isvalidipv4": (1, True),
    "ispresent": (1, True),
    "isempty": (1, True),
    "frommillis": (1, False),
    "tomillis": (1, False),
    "bin": (1, False),
    "strlen": (1, False),
    "tolower": (1, False),
    "toupper": (1, False),
    "concat": ((1, None), False),
    "substr": ((2, 3), False),
    "abs": (1, False),
    "floor": (1, False),
    "ceil": (1, False),
}
_COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}
_KEYWORDS = {"and", "or", "not", "in", "like", "as", "by", "asc", "desc"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.i = 0
        self.allow_aggregates = False
        self.in_aggregate = False

    # token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def at_word(self, *words: str) -> bool:
        return self.tok.word() in words

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def expect_op(self, op: str, what: str) -> _Token:
        if not self.at_op(op):
            self.fail(f"expected {op!r} {what}")
        return self.advance()

    def fail(self, message: str, tok: _Token | None = None) -> NoReturn:
        tok = tok or self.tok
        found = "end of query" if tok.kind == "eof" else repr(tok.text)
        raise InsightsQueryError(f"{message}, found {found}", tok.pos)

    @property
    def last_end(self) -> int:
        return self.tokens[self.i - 1].end if self.i else 0

    # commands
    def parse(self) -> tuple[Command, ...]:
        if self.tok.kind == "eof":
            raise InsightsQueryError("empty query", 0)
        commands = [self.command()]
        while self.at_op("|"):
            self.advance()
            commands.append(self.command())
        if self.tok.kind != "eof":
            self.fail("expected '|' or the end of the query")
        return tuple(commands)

    def command(self) -> Command:
        tok = self.tok
        word = tok.word()
        if word is None:
            self.fail("expected a command (fields, filter, stats, sort, limit)")
        self.advance()
        if word == "fields":
            return FieldsCommand(self.items(allow_aggregates=False), tok.pos)
        if word == "filter":
            start = self.tok.pos
            expr = self.expression(allow_aggregates=False)
            if not _is_boolean(expr):
                raise InsightsQueryError("filter needs a boolean condition (a comparison, in, like, and/or/not "
                                         "or a boolean function)", start)
            return FilterCommand(expr, tok.pos)
        if word == "stats":
            aggregates = self.items(allow_aggregates=True)
            for item in aggregates:
                _check_aggregate_item(item)
            by: tuple[Item, ...] = ()
            if self.at_word("by"):
                self.advance()
                by = self.items(allow_aggregates=False)
            names = [i.name for i in by] + [i.name for i in aggregates]
            for index, name in enumerate(names):
                if name in names[:index]:
                    raise InsightsQueryError(f"stats defines {name!r} twice", tok.pos)
            return StatsCommand(aggregates, by, tok.pos)
        if word == "sort":
            keys = [self.sort_key()]
            while self.at_op(","):
                self.advance()
                keys.append(self.sort_key())
            return SortCommand(tuple(keys), tok.pos)
        if word == "limit":
            if self.at_word("any"):
                self.advance()
            number = self.tok
            if number.kind != "number" or not isinstance(number.value, int) or number.value < 1:
                self.fail("limit needs a positive whole number")
            self.advance()
            return LimitCommand(number.value, tok.pos)
        if word in UNSUPPORTED_COMMANDS:
            raise InsightsQueryError(f"unsupported command {tok.text!r} (this evaluator implements fields, "
                                     "filter, stats, sort, limit)", tok.pos)
        raise InsightsQueryError(f"unknown command {tok.text!r}", tok.pos)

    def name_token(self, what: str) -> _Token:
        tok = self.tok
        if tok.kind == "quoted" or (tok.kind == "ident" and tok.word() not in _KEYWORDS):
            return self.advance()
        self.fail(f"expected {what}")

    def items(self, *, allow_aggregates: bool) -> tuple[Item, ...]:
        items = [self.item(allow_aggregates)]
        while self.at_op(","):
            self.advance()
            items.append(self.item(allow_aggregates))
        return tuple(items)

    def item(self, allow_aggregates: bool) -> Item:
        start = self.tok.pos
        expr = self.expression(allow_aggregates=allow_aggregates)
        if self.at_word("as"):
            self.advance()
            name = self.name_token("a field name after 'as'").value
        elif isinstance(expr, Ref):
            name = expr.name
        else:
            name = self.text[start:self.last_end]
        return Item(expr, name, start)

    def sort_key(self) -> SortKey:
        tok = self.name_token("a field name to sort by")
        descending = DEFAULT_SORT_DESCENDING
        if self.at_word("asc", "desc"):
            descending = self.advance().word() == "desc"
        return SortKey(tok.value, descending, tok.pos)

    # expressions
    def expression(self, *, allow_aggregates: bool) -> Any:
        self.allow_aggregates = allow_aggregates
        self.in_aggregate = False
        return self.disjunction()

    def disjunction(self) -> Any:
        node = self.conjunction()
        while self.at_word("or"):
            self.advance()
            node = BoolOp("or", node, self.conjunction())
        return node

    def conjunction(self) -> Any:
        node = self.negation()
        while self.at_word("and"):
            self.advance()
            node = BoolOp("and", node, self.negation())
        return node

    def negation(self) -> Any:
        if self.at_word("not") and self.peek().word() not in ("in", "like"):
            self.advance()
            return Not(self.negation())
        return self.comparison()

    def comparison(self) -> Any:
        left = self.additive()
        tok = self.tok
        if tok.kind == "op" and tok.text in _COMPARISONS:
            self.advance()
            return Compare(tok.text, left, self.additive())
        negated = False
        if self.at_word("not") and self.peek().word() in ("in", "like"):
            self.advance()
            negated = True
        if self.at_word("in"):
            self.advance()
            return InList(negated, left, self.literal_list())
        if self.at_word("like") or (not negated and self.at_op("=~")):
            op = self.advance()
            pattern = self.tok
            if pattern.kind == "regex":
                try:
                    re.compile(pattern.value)
                except re.error as exc:
                    raise InsightsQueryError(f"invalid regular expression: {exc}", pattern.pos) from None
                self.advance()
                return Like(negated, left, pattern.value, True, pattern.pos)
            if pattern.kind == "string":
                is_regex = op.text == "=~"
                if is_regex:
                    try:
                        re.compile(pattern.value)
                    except re.error as exc:
                        raise InsightsQueryError(f"invalid regular expression: {exc}", pattern.pos) from None
                self.advance()
                return Like(negated, left, pattern.value, is_regex, pattern.pos)
            self.fail(f"expected a string or /regex/ after {op.text!r}")
        if negated:
            self.fail("expected 'in' or 'like' after 'not'")
        return left

    def literal_list(self) -> tuple:
        self.expect_op("[", "to open the list after 'in'")
        values = []
        if not self.at_op("]"):
            values.append(self.literal())
            while self.at_op(","):
                self.advance()
                values.append(self.literal())
        self.expect_op("]", "to close the list")
        return tuple(values)

    def literal(self) -> Any:
        sign = 1
        if self.at_op("-"):
            self.advance()
            sign = -1
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return sign * tok.value
        if tok.kind == "string" and sign == 1:
            self.advance()
            return tok.value
        self.fail("expected a number or a string literal in the list")

    def additive(self) -> Any:
        node = self.multiplicative()
        while self.at_op("+", "-"):
            op = self.advance().text
            node = Arith(op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Any:
        node = self.unary()
        while self.at_op("*", "/", "%"):
            op = self.advance().text
            node = Arith(op, node, self.unary())
        return node

    def unary(self) -> Any:
        if self.at_op("-"):
            self.advance()
            operand = self.unary()
            return Lit(-operand.value) if isinstance(operand, Lit) and isinstance(operand.value, (int, float)) else Neg(operand)
        return self.primary()

    def primary(self) -> Any:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return Lit(tok.value)
        if tok.kind == "string":
            self.advance()
            return Lit(tok.value)
        if tok.kind == "quoted":
            self.advance()
            return Ref(tok.value, tok.pos)
        if self.at_op("("):
            self.advance()
            node = self.disjunction()
            self.expect_op(")", "to close the parenthesis")
            return node
        if tok.kind == "ident" and self.peek().kind == "op" and self.peek().text == "(":
            return self.call()
        if tok.kind == "ident" and tok.word() not in _KEYWORDS:
            self.advance()
            return Ref(tok.text, tok.pos)
        if tok.kind == "duration":
            self.fail("a time period is only allowed as the argument of bin()")
        if tok.kind == "regex":
            self.fail("a /regex/ is only allowed after like or =~")
        self.fail("expected a field, a literal, a function call or '('")

    def call(self) -> Any:
        tok = self.advance()
        name = tok.text.lower()
        self.advance()  # "("
        if name in _AGGREGATES:
            if not self.allow_aggregates:
                raise InsightsQueryError(f"aggregate function {tok.text}() is only allowed in stats", tok.pos)
            if self.in_aggregate:
                raise InsightsQueryError(f"aggregate function {tok.text}() cannot be nested in another aggregate", tok.pos)
            if name == "count" and (self.at_op("*") or self.at_op(")")):
                if self.at_op("*"):
                    self.advance()
                self.expect_op(")", "to close count(*)")
                return Agg("count", None, tok.pos)
            self.in_aggregate = True
            arg = self.disjunction()
            self.in_aggregate = False
            if self.at_op(","):
                self.fail(f"{tok.text}() takes one argument")
            self.expect_op(")", f"to close {tok.text}(")
            return Agg(name, arg, tok.pos)
        if name in _UNSUPPORTED_FUNCTIONS:
            raise InsightsQueryError(f"unsupported function {tok.text}()", tok.pos)
        if name not in _FUNCTIONS:
            raise InsightsQueryError(f"unknown function {tok.text}()", tok.pos)
        arity, _ = _FUNCTIONS[name]
        args: list[Any] = []
        if name == "bin":
            period = self.tok
            if period.kind != "duration":
                self.fail("bin() needs a time period such as 5m or 1h")
            self.advance()
            args.append(Duration(period.value, period.text, period.pos))
        elif not self.at_op(")"):
            args.append(self.disjunction())
            while self.at_op(","):
                self.advance()
                args.append(self.disjunction())
        self.expect_op(")", f"to close {tok.text}(")
        fewest, most = arity if isinstance(arity, tuple) else (arity, arity)
        if len(args) < fewest or most is not None and len(args) > most:
            wanted = (f"{fewest}" if fewest == most else f"at least {fewest}" if most is None
                      else f"{fewest} to {most}")
            raise InsightsQueryError(f"{tok.text}() takes {wanted} argument{'' if fewest == 1 and most in (1, None) else 's'}, got {len(args)}",
                                     tok.pos)
        if name in ("ispresent", "isempty") and not isinstance(args[0], Ref):
            raise InsightsQueryError(f"{tok.text}() takes a field name", tok.pos)
        if name == "isipv4insubnet":
            cidr = args[1]
            if not (isinstance(cidr, Lit) and isinstance(cidr.value, str)):
                raise InsightsQueryError("isIpv4InSubnet() takes the subnet as a string literal", tok.pos)
            _parse_cidr(cidr.value, tok.pos)
        if name == "frommillis" and isinstance(args[0], Lit):
            number = _num(args[0].value)
            if number is None:
                raise InsightsQueryError("fromMillis() takes a number of milliseconds", tok.pos)
            return Lit(_Time(int(number)))
        return Call(name, tuple(args), tok.pos)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, (Arith, Compare, BoolOp)):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, (Neg, Not, InList, Like)):
        yield from _walk(node.operand)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from _walk(arg)
    elif isinstance(node, Agg) and node.arg is not None:
        yield from _walk(node.arg)


def _is_boolean(node: Any) -> bool:
    if isinstance(node, (Compare, InList, Like)):
        return True
    if isinstance(node, BoolOp):
        return _is_boolean(node.left) and _is_boolean(node.right)
    if isinstance(node, Not):
        return _is_boolean(node.operand)
    return isinstance(node, Call) and _FUNCTIONS[node.name][1]


def _check_aggregate_item(item: Item) -> None:
    """A stats item must aggregate: fields may only appear inside an aggregate."""
    found = False

    def visit(node: Any) -> None:
        nonlocal found
        if isinstance(node, Agg):
            found = True
            return
        if isinstance(node, Ref) or (isinstance(node, Call) and node.name == "bin"):
            raise InsightsQueryError(f"stats item {item.name!r} uses a field outside an aggregate function", item.pos)
        for child in _children(node):
            visit(child)

    visit(item.expr)
    if not found:
        raise InsightsQueryError(f"stats item {item.name!r} has no aggregate function", item.pos)


def _children(node: Any) -> tuple:
    if isinstance(node, (Arith, Compare, BoolOp)):
        return (node.left, node.right)
    if isinstance(node, (Neg, Not, InList, Like)):
        return (node.operand,)
    if isinstance(node, Call):
        return node.args
    return ()


def _validate(commands: tuple[Command, ...]) -> None:
    """Rules across commands: two stats at most; after a stats only its fields exist."""
    stats_positions = [i for i, c in enumerate(commands) if isinstance(c, StatsCommand)]
    if len(stats_positions) > MAX_STATS_COMMANDS:
        raise InsightsQueryError(f"a query can have at most {MAX_STATS_COMMANDS} stats commands",
                                 commands[stats_positions[MAX_STATS_COMMANDS]].pos)
    if len(stats_positions) == 2:
        for command in commands[:stats_positions[1]]:
            if isinstance(command, (SortCommand, LimitCommand)):
                raise InsightsQueryError("sort and limit must come after the second stats command", command.pos)
    available: set[str] | None = None  # None: the raw events, where any field may exist

    def check(node: Any) -> None:
        if available is None:
            return
        for sub in _walk(node):
            if isinstance(sub, Ref) and sub.name not in available:
                raise InsightsQueryError(f"field {sub.name!r} is not defined by the preceding stats "
                                         f"(available: {', '.join(sorted(available))})", sub.pos)
            if isinstance(sub, Call) and sub.name == "bin" and "@timestamp" not in available:
                raise InsightsQueryError("bin() uses @timestamp, which the preceding stats does not define", sub.pos)

    for command in commands:
        if isinstance(command, FilterCommand):
            check(command.expr)
        elif isinstance(command, FieldsCommand):
            for item in command.items:
                check(item.expr)
                if available is not None:
                    available.add(item.name)
        elif isinstance(command, SortCommand):
            for key in command.keys:
                check(Ref(key.name, key.pos))
        elif isinstance(command, StatsCommand):
            for item in command.aggregates + command.by:
                check(item.expr)
            available = set(command.names)


def parse_query(text: str) -> Query:
    """Parse a Logs Insights query; raise InsightsQueryError for anything outside the subset."""
    if not isinstance(text, str):
        raise InsightsQueryError(f"a query is a string, not {type(text).__name__}")
    commands = _Parser(text).parse()
    _validate(commands)
    return Query(text, commands)


# ---------------------------------------------------------------------------------------
# Compilation to closures

Row = dict[str, Any]
_Fn = Callable[[Any], Any]


def _arith(op: str, a: Any, b: Any) -> Any:
    x, y = _num(a), _num(b)
    if x is None or y is None:
        return None
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if y == 0:
        return None
    if op == "/":
        return x / y
    if isinstance(x, float) or isinstance(y, float):
        return math.fmod(x, y)
    remainder = abs(x) % abs(y)  # truncated, the sign of the dividend (as fmod, exact for big ints)
    return -remainder if x < 0 else remainder


def _compile(node: Any, aggregate_slots: dict[int, int] | None = None) -> _Fn:
    """A function of a row (or, with aggregate_slots, of the list of aggregate results)."""
    if isinstance(node, Lit):
        value = node.value
        return lambda row: value
    if isinstance(node, Ref):
        name = node.name
        return lambda row: row.get(name)
    if isinstance(node, Agg):
        if aggregate_slots is None:  # guarded by the parser
            raise InsightsQueryError("aggregate outside stats", node.pos)
        slot = aggregate_slots[id(node)]
        return lambda values: values[slot]
    if isinstance(node, Neg):
        operand = _compile(node.operand, aggregate_slots)

        def negate(row: Any) -> Any:
            x = _num(operand(row))
            return None if x is None else -x
        return negate
    if isinstance(node, Arith):
        left, right, op = _compile(node.left, aggregate_slots), _compile(node.right, aggregate_slots), node.op
        return lambda row: _arith(op, left(row), right(row))
    if isinstance(node, BoolOp):
        left, right = _compile(node.left, aggregate_slots), _compile(node.right, aggregate_slots)
        if node.op == "and":
            return lambda row: bool(left(row)) and bool(right(row))
        return lambda row: bool(left(row)) or bool(right(row))
    if isinstance(node, Not):
        operand = _compile(node.operand, aggregate_slots)
        return lambda row: not operand(row)
    if isinstance(node, Compare):
        if isinstance(node.right, Lit) and not isinstance(node.left, Lit):
            return _compare_literal(node.op, _compile(node.left, aggregate_slots), node.right.value)
        if isinstance(node.left, Lit) and not isinstance(node.right, Lit):
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(node.op, node.op)
            return _compare_literal(flipped, _compile(node.right, aggregate_slots), node.left.value)
        left, right = _compile(node.left, aggregate_slots), _compile(node.right, aggregate_slots)
        op = node.op
        if op == "=":
            return lambda row: _equal(left(row), right(row))
        if op == "!=":

            def differ(row: Any) -> bool:
                a, b = left(row), right(row)
                return a is not None and b is not None and not _equal(a, b)
            return differ
        accept = _ORDER_ACCEPTS[op]

        def ordered(row: Any) -> bool:
            return _order(left(row), right(row)) in accept
        return ordered
    if isinstance(node, InList):
        operand, values, negated = _compile(node.operand, aggregate_slots), node.values, node.negated

        def member(row: Any) -> bool:
            value = operand(row)
            if value is None:
                return False
            return any(_equal(value, v) for v in values) != negated
        return member
    if isinstance(node, Like):
        operand, negated, pattern = _compile(node.operand, aggregate_slots), node.negated, node.pattern
        if node.regex:
            search = re.compile(pattern).search

            def matches(row: Any) -> bool:
                value = operand(row)
                return value is not None and (search(_text(value)) is not None) != negated
        else:

            def matches(row: Any) -> bool:
                value = operand(row)
                return value is not None and (pattern in _text(value)) != negated
        return matches
    if isinstance(node, Call):
        return _compile_call(node, aggregate_slots)
    raise InsightsQueryError(f"unsupported expression {type(node).__name__}")  # pragma: no cover


_ORDER_ACCEPTS = {"<": (-1,), "<=": (-1, 0), ">": (1,), ">=": (0, 1)}


def _compare_literal(op: str, operand: _Fn, literal: Any) -> _Fn:
    """``operand op literal`` with the literal's number and text worked out once."""
    number, text = _num(literal), _text(literal)
    if op in ("=", "!="):
        want = op == "="
        if number is None:  # a non-numeric literal only ever equals as text
            def equal_text(row: Any) -> bool:
                value = operand(row)
                return value is not None and (_text(value) == text) == want
            return equal_text

        def equal_number(row: Any) -> bool:
            value = operand(row)
            if value is None:
                return False
            x = _num(value)
            return (x == number if x is not None else _text(value) == text) == want
        return equal_number
    accept = _ORDER_ACCEPTS[op]

    def ordered(row: Any) -> bool:
        value = operand(row)
        if value is None:
            return False
        x = _num(value) if number is not None else None
        if x is not None:
            return ((x > number) - (x < number)) in accept
        t = _text(value)
        return ((t > text) - (t < text)) in accept
    return ordered


def _compile_call(node: Call, aggregate_slots: dict[int, int] | None) -> _Fn:
    name = node.name
    if name == "bin":
        period = node.args[0].ms

        def bin_(row: Any) -> Any:
            ts = _num(row.get("@timestamp"))
            return None if ts is None else _Time(int(ts) // period * period)
        return bin_
    args = [_compile(a, aggregate_slots) for a in node.args]
    arg = args[0]
    if name == "isipv4insubnet":
        network, mask = _parse_cidr(node.args[1].value, node.pos)

        def in_subnet(row: Any) -> bool:
            address = _ipv4(arg(row))
            return address is not None and address & mask == network
        return in_subnet
    if name == "isvalidipv4":
        return lambda row: _ipv4(arg(row)) is not None
    if name == "ispresent":
        return lambda row: arg(row) is not None
    if name == "isempty":
        return lambda row: arg(row) in (None, "")
    if name == "frommillis":

        def from_millis(row: Any) -> Any:
            x = _num(arg(row))
            return None if x is None else _Time(int(x))
        return from_millis
    if name == "tomillis":

        def to_millis(row: Any) -> Any:
            x = _num(arg(row))
            return None if x is None else int(x)
        return to_millis
    if name == "strlen":
        return lambda row: None if (v := arg(row)) is None else len(_text(v))
    if name == "tolower":
        return lambda row: None if (v := arg(row)) is None else _text(v).lower()
    if name == "toupper":
        return lambda row: None if (v := arg(row)) is None else _text(v).upper()
    if name == "concat":  # a missing value adds nothing
        return lambda row: "".join(_text(v) for f in args if (v := f(row)) is not None)
    if name == "substr":  # substr(text, start[, length]); start counts from 0

        def substr(row: Any) -> Any:
            text, values = arg(row), [_num(f(row)) for f in args[1:]]
            if text is None or any(v is None or v < 0 for v in values):
                return None
            start = int(values[0])
            return _text(text)[start:] if len(values) == 1 else _text(text)[start:start + int(values[1])]
        return substr
    unary = {"abs": abs, "floor": math.floor, "ceil": math.ceil}[name]

    def numeric(row: Any) -> Any:
        x = _num(arg(row))
        return None if x is None or isinstance(x, float) and not math.isfinite(x) else unary(x)
    return numeric


# ---------------------------------------------------------------------------------------
# Aggregation


def _aggregator(agg: Agg) -> tuple[Callable[[], Any], Callable[[list, int, Row], None], Callable[[Any], Any]]:
    """(initial state, update(states, slot, row), result(state)) for one aggregate."""
    name = agg.name
    if name == "count" and agg.arg is None:

        def update_all(states: list, slot: int, row: Row) -> None:
            states[slot] += 1
        return (lambda: 0), update_all, (lambda s: s)
    fn = _compile(agg.arg)
    if name == "count":

        def update_count(states: list, slot: int, row: Row) -> None:
            if fn(row) is not None:
                states[slot] += 1
        return (lambda: 0), update_count, (lambda s: s)
    if name == "count_distinct":

        def update_distinct(states: list, slot: int, row: Row) -> None:
            value = fn(row)
            if value is not None:
                states[slot].add(_text(value))
        return set, update_distinct, len
    if name == "sum":

        def update_sum(states: list, slot: int, row: Row) -> None:
            x = _num(fn(row))
            if x is not None:
                current = states[slot]
                states[slot] = x if current is None else current + x
        return (lambda: None), update_sum, (lambda s: None if s is None else (int(s) if isinstance(s, _Time) else s))
    if name == "avg":

        def update_avg(states: list, slot: int, row: Row) -> None:
            x = _num(fn(row))
            if x is not None:
                state = states[slot]
                state[0] += x
                state[1] += 1
        return (lambda: [0, 0]), update_avg, (lambda s: s[0] / s[1] if s[1] else None)
    better = (lambda a, b: a < b) if name == "min" else (lambda a, b: a > b)

    def update_extreme(states: list, slot: int, row: Row) -> None:
        value = fn(row)
        if value is not None:
            key = _sort_key(value)
            state = states[slot]
            if state is None or better(key, state[0]):
                states[slot] = (key, value)
    return (lambda: None), update_extreme, (lambda s: None if s is None else s[1])


def _stats(command: StatsCommand, rows: Iterable[Row]) -> list[Row]:
    """One pass; groups in a dict keyed by the by-values (first-seen order)."""
    slots: dict[int, int] = {}
    aggregates: list[Agg] = []
    for item in command.aggregates:
        for node in _walk(item.expr):
            if isinstance(node, Agg) and id(node) not in slots:
                slots[id(node)] = len(aggregates)
                aggregates.append(node)
    parts = [_aggregator(a) for a in aggregates]
    initials = [p[0] for p in parts]
    updates = list(enumerate(p[1] for p in parts))
    results = [p[2] for p in parts]
    by_fns = [_compile(i.expr) for i in command.by]
    by_names = [i.name for i in command.by]
    outputs = [(i.name, _compile(i.expr, slots)) for i in command.aggregates]

    groups: dict[tuple, list] = {}
    if all(isinstance(i.expr, Ref) for i in command.by):
        names = [i.expr.name for i in command.by]

        def group_key(row: Row) -> tuple:
            return tuple(map(row.get, names))
    else:

        def group_key(row: Row) -> tuple:
            return tuple([f(row) for f in by_fns])
    for row in rows:
        key = group_key(row)
        states = groups.get(key)
        if states is None:
            states = groups[key] = [init() for init in initials]
        for slot, update in updates:
            update(states, slot, row)

    out: list[Row] = []
    for key, states in groups.items():
        values = [result(state) for result, state in zip(results, states)]
        row = dict(zip(by_names, key))
        for name, fn in outputs:
            row[name] = fn(values)
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------
# Evaluation


def _utf8_size(message: str) -> int:
    return len(message) if message.isascii() else len(message.encode("utf-8", "surrogatepass"))


def _event_rows(events: Iterator[Mapping], scanned: list, with_ptr: bool) -> Iterator[Row]:
    """Rows of discovered fields, one per event; counts records and UTF-8 bytes scanned."""
    flow_fields = FLOW_LOG_FIELDS
    width = len(flow_fields)
    for index, event in enumerate(events):
        message = event.get("message")
        if not isinstance(message, str):
            raise ValueError(f"event {index} has no string 'message'")
        scanned[0] += 1
        scanned[1] += _utf8_size(message)
        row: Row = {"@timestamp": _Time(int(event["timestamp"])), "@message": message}
        stream, group, ingested = event.get("logStreamName"), event.get("logGroupName"), event.get("ingestionTime")
        if stream is not None:
            row["@logStream"] = stream
        if group is not None:
            row["@log"] = group
        if ingested is not None:
            row["@ingestionTime"] = _Time(int(ingested))
        parts = message.rstrip("\r\n").split(" ")
        if len(parts) == width:
            row.update(zip(flow_fields, parts))
        if with_ptr:
            row["@ptr"] = f"ptr-{index:010x}"
        yield row


def _fields(command: FieldsCommand, rows: Iterable[Row]) -> Iterator[Row]:
    computed = [(i.name, _compile(i.expr)) for i in command.items if not (isinstance(i.expr, Ref) and i.expr.name == i.name)]
    if not computed:
        yield from rows
        return
    for row in rows:
        for name, fn in computed:
            row[name] = fn(row)
        yield row


def _sort(command: SortCommand, rows: Iterable[Row], keep: int | None) -> Iterator[Row]:
    keys = command.keys
    directions = {k.descending for k in keys}
    if len(directions) == 1:
        names = [k.name for k in keys]
        key = (lambda row: _sort_key(row.get(names[0]))) if len(names) == 1 else \
            (lambda row: tuple(_sort_key(row.get(n)) for n in names))
        descending = directions.pop()
        if keep is not None:  # top-N: memory bounded by N
            pick = heapq.nlargest if descending else heapq.nsmallest
            return iter(pick(keep, rows, key=key))
        return iter(sorted(rows, key=key, reverse=descending))
    ordered = list(rows)
    for k in reversed(keys):
        ordered.sort(key=lambda row, n=k.name: _sort_key(row.get(n)), reverse=k.descending)
    return iter(ordered if keep is None else ordered[:keep])


def _rows_kept_after(commands: list[Command], index: int, cap: int) -> int | None:
    """How many rows a sort at ``index`` can still pass to the result (None: all of them)."""
    for command in commands[index + 1:]:
        if isinstance(command, LimitCommand):
            return min(command.count, cap)
        if not isinstance(command, FieldsCommand):
            return None
    return cap


def _display(query: Query) -> list[str] | None:
    """The fields shown: those named by ``fields`` in the last stage, else None (all)."""
    last_stats = max((i for i, c in enumerate(query.commands) if isinstance(c, StatsCommand)), default=-1)
    names: list[str] = []
    for command in query.commands[last_stats + 1:]:
        if isinstance(command, FieldsCommand):
            names.extend(i.name for i in command.items if i.name not in names)
    if names:
        return names
    if last_stats >= 0:
        return list(query.commands[last_stats].names)
    return None


def run_query(query: Query | str, events: Iterable[Mapping], *, limit: int | None = None) -> QueryResult:
    """Evaluate a query over events the caller already restricted to the time range and groups.

    events: mappings with ``timestamp`` (epoch ms), ``message`` and optionally
    ``logStreamName``, ``logGroupName``, ``ingestionTime``. ``limit`` is StartQuery's limit
    (at most ``MAX_RESULT_ROWS``; default ``DEFAULT_LIMIT``); a ``limit`` command lowers it.
    """
    if isinstance(query, str):
        query = parse_query(query)
    if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= MAX_RESULT_ROWS):
        raise InsightsQueryError(f"limit must be a whole number from 1 to {MAX_RESULT_ROWS}, not {limit!r}")
    cap = min(MAX_RESULT_ROWS, limit or DEFAULT_LIMIT)
    commands: list[Command] = list(query.commands)
    has_stats = any(isinstance(c, StatsCommand) for c in commands)
    if not has_stats and not any(isinstance(c, SortCommand) for c in commands):
        # Unsorted events come newest first (so ``limit N`` keeps the N most recent).
        first_limit = next((i for i, c in enumerate(commands) if isinstance(c, LimitCommand)), len(commands))
        commands.insert(first_limit, SortCommand((SortKey("@timestamp", True, 0),), 0))

    source = iter(events)
    scanned = [0, 0]
    matched = [0]

    def count_matched(rows: Iterable[Row]) -> Iterator[Row]:
        for row in rows:
            matched[0] += 1
            yield row

    first_stats = next((i for i, c in enumerate(commands) if isinstance(c, StatsCommand)), len(commands))
    last_filter = max((i for i, c in enumerate(commands[:first_stats]) if isinstance(c, FilterCommand)), default=-1)

    stream: Iterator[Row] = _event_rows(source, scanned, not has_stats)
    if last_filter < 0:
        stream = count_matched(stream)
    for index, command in enumerate(commands):
        if isinstance(command, FilterCommand):
            # filter() binds this command's predicate now; a generator expression would look the
            # name up when rows flow, and every filter of the query would test the last one's.
            stream = filter(_compile(command.expr), stream)
        elif isinstance(command, FieldsCommand):
            stream = _fields(command, stream)
        elif isinstance(command, SortCommand):
            stream = _sort(command, stream, _rows_kept_after(commands, index, cap))
        elif isinstance(command, LimitCommand):
            stream = itertools.islice(stream, command.count)
        elif isinstance(command, StatsCommand):
            stream = iter(_stats(command, stream))
        if index == last_filter:
            stream = count_matched(stream)
    rows = list(itertools.islice(stream, cap))
    for event in source:  # AWS scans the whole range even when a limit stopped early
        message = event.get("message")
        scanned[0] += 1
        scanned[1] += _utf8_size(message) if isinstance(message, str) else 0

    display = _display(query)
    results: list[list[dict[str, str]]] = []
    for row in rows:
        if display is None:
            cells = [{"field": k, "value": _text(v)} for k, v in row.items() if v is not None and k != "@ptr"]
        else:
            cells = [{"field": k, "value": _text(v)} for k in display if (v := row.get(k)) is not None]
        if not has_stats and "@ptr" in row:
            cells.append({"field": "@ptr", "value": row["@ptr"]})
        results.append(cells)
    statistics = {"recordsMatched": float(matched[0]), "recordsScanned": float(scanned[0]),
                  "bytesScanned": float(scanned[1])}
    return QueryResult(results, statistics)
