"""The one YAML loader: PyYAML's safe loader, with aliases and their expansion bounded.

A YAML alias is a reference to an anchored node, so a few hundred bytes of nested aliases (a "billion laughs"
document) describe a tree of billions of nodes: PyYAML builds it cheaply as shared references, but anything that
walks it (the JSON data model conversion, the schema validator) expands it in full. No document stella imports
needs more than a handful of aliases (the OpenAPI and developer-portal corpus under ``tests/fixtures`` has none), so
a document is refused, before it is constructed, when it uses more than :data:`MAX_ALIASES` aliases or when its
node tree, with every alias expanded, would exceed :data:`MAX_EXPANDED_NODES` nodes.
"""

from __future__ import annotations

from typing import Any

import yaml

from core.errors import SchemaError

#: Aliases (``*name``) one document may use.
MAX_ALIASES = 100
#: Nodes the document's tree may hold with every alias expanded (scalars, sequences and mappings each count one).
MAX_EXPANDED_NODES = 1_000_000


def load_yaml(text: str | bytes, *, path: str) -> Any:
    """Parse one YAML document with the safe loader; a syntax error or an alias bomb is a :class:`SchemaError`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node, path)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SchemaError(f"malformed YAML{where}: {problem}", path=path) from None
    except RecursionError:
        raise SchemaError("YAML nesting is too deep to read", path=path) from None
    finally:
        loader.dispose()


def _check_aliases(root: yaml.Node, path: str) -> None:
    """Count aliases (references to a node beyond its first) and the expanded size; each node is walked once."""
    expanded: dict[int, int] = {}  # 0 while a node's children are being walked, then its expanded size
    references = 0
    # Iterative post-order walk: a deep document must not exhaust Python's stack here.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(node))
            if expanded[key] > MAX_EXPANDED_NODES:
                raise _bomb(f"its aliases expand to more than {MAX_EXPANDED_NODES:,} nodes", path)
            continue
        if key in expanded:
            continue
        expanded[key] = 0
        stack.append((node, True))
        for child in _children(node):
            references += 1
            if expanded.get(id(child)) == 0:
                raise SchemaError("a YAML alias refers to a node that contains it", path=path)
            stack.append((child, False))
    aliases = references - (len(expanded) - 1)
    if aliases > MAX_ALIASES:
        raise _bomb(f"it uses {aliases} aliases, more than {MAX_ALIASES}", path)


def _bomb(why: str, path: str) -> SchemaError:
    return SchemaError(
        f"refusing a likely YAML alias bomb: {why}",
        path=path,
        hint="expand the anchors in the document itself",
    )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
