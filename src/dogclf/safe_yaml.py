"""The one YAML reader of dogclf: safe tags only, and a document may not grow past a budget through its aliases.

yaml.safe_load builds `&a [*b, *b, ...]` chains (billion laughs) as shared objects, cheaply; whatever walks them
afterwards (flattening, comparing, dumping) expands them. Here the composed document is measured first, with
every alias expanded, and refused beyond MAX_YAML_NODES values or when an alias refers to itself.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_NODES = 100_000  # values after alias expansion; a dogclf config holds a few hundred


class YamlBudgetError(yaml.YAMLError):
    """The document expands past MAX_YAML_NODES values, or an alias refers to itself."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _expanded(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Values under `node` with aliases expanded (memoized per node, so shared nodes are measured once)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise YamlBudgetError(f"a recursive alias (line {node.start_mark.line + 1} refers to itself)")
    open_nodes.add(key)
    total = 1
    for child in _children(node):
        total += _expanded(child, sizes, open_nodes)
        if total > MAX_YAML_NODES:
            raise YamlBudgetError(f"more than {MAX_YAML_NODES} values once its aliases are expanded")
    open_nodes.discard(key)
    sizes[key] = total
    return total


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that measures each document before building it."""

    def construct_document(self, node: yaml.Node) -> Any:
        """Refuse a document over the budget, then build it as SafeLoader does."""
        _expanded(node, {}, set())
        return super().construct_document(node)


def load_yaml(text: str) -> Any:
    """One YAML document with safe tags, within the alias budget; yaml.YAMLError (or RecursionError) otherwise."""
    return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
