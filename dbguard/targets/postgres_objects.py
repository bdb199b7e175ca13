"""The definitions of a PostgreSQL database's objects beyond tables, columns, constraints and indexes.

Each kind is one catalog query giving (kind, name, definition) rows, the definition as the server itself
writes it out (pg_get_functiondef, pg_get_triggerdef, pg_get_ruledef, pg_get_viewdef, ...), so that two
snapshots compare as text: `Schema.diff` reports what a script added, dropped or changed. Only the user's
schemas count, and never an extension's own members (installing amcheck for the gate adds none).
"""

from __future__ import annotations

from typing import Any, LiteralString

from psycopg.sql import SQL, Composed, Literal

# The user's own schemas: n is the pg_namespace row of the object.
USER_SCHEMA = SQL("n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'")
_NOT_EXTENSION_MEMBER = SQL("NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = {catalog}::regclass "
                            "AND e.objid = {oid} AND e.deptype = 'e')")  # fmt: skip


def _not_extension_member(catalog: str, oid: LiteralString) -> Composed:
    return _NOT_EXTENSION_MEMBER.format(catalog=Literal(catalog), oid=SQL(oid))


_QUERIES = {
    # aggregates have no pg_get_functiondef; overloads differ by their arguments
    "functions": """
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
  n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.prokind <> 'a' AND {user_schema} AND {not_extension_member_proc}""",
    # internal triggers implement foreign keys; a partition's clone of its parent's trigger is the parent's
    "triggers": """
SELECT 'trigger', n.nspname || '.' || c.relname || '.' || t.tgname,
  pg_get_triggerdef(t.oid) || CASE t.tgenabled WHEN 'D' THEN ' (disabled)' WHEN 'R' THEN ' (fires on replicas only)'
                                               WHEN 'A' THEN ' (fires always)' ELSE '' END
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {user_schema}""",
    # a view's _RETURN rule is the view itself, compared as a view
    "rules": """
SELECT 'rule', n.nspname || '.' || c.relname || '.' || r.rulename,
  pg_get_ruledef(r.oid) || CASE r.ev_enabled WHEN 'D' THEN ' (disabled)' WHEN 'R' THEN ' (fires on replicas only)'
                                             WHEN 'A' THEN ' (fires always)' ELSE '' END
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN' AND {user_schema}""",
    "views": """
SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, n.nspname || '.' || c.relname,
  pg_get_viewdef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {user_schema} AND {not_extension_member_class}""",
    # NOT NULL from typnotnull (PostgreSQL 17 also lists it as a constraint of kind 'n': left out there)
    "domains": """
SELECT 'domain', n.nspname || '.' || t.typname,
  format_type(t.typbasetype, t.typtypmod) || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
  || coalesce(' DEFAULT ' || t.typdefault, '')
  || coalesce((SELECT string_agg(' CONSTRAINT ' || quote_ident(con.conname) || ' ' || pg_get_constraintdef(con.oid),
                                 '' ORDER BY con.conname)
               FROM pg_constraint con WHERE con.contypid = t.oid AND con.contype <> 'n'), '')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'd' AND {user_schema} AND {not_extension_member_type}""",
    "enums": """
SELECT 'enum', n.nspname || '.' || t.typname,
  'ENUM (' || coalesce((SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                        FROM pg_enum e WHERE e.enumtypid = t.oid), '') || ')'
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND {user_schema} AND {not_extension_member_type}""",
    # the definition, never the value: where a sequence stands is the execution's to report
    "sequences": """
SELECT 'sequence', n.nspname || '.' || c.relname,
  'AS ' || format_type(s.seqtypid, NULL) || ' START ' || s.seqstart || ' INCREMENT ' || s.seqincrement
  || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' || s.seqmax || ' CACHE ' || s.seqcache
  || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END
  || coalesce((SELECT CASE d.deptype WHEN 'i' THEN ' IDENTITY OF ' ELSE ' OWNED BY ' END
                      || tn.nspname || '.' || tc.relname || '.' || a.attname
               FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid
               JOIN pg_namespace tn ON tn.oid = tc.relnamespace
               JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
               WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                 AND d.deptype IN ('a', 'i') LIMIT 1), '')
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {user_schema} AND {not_extension_member_class}""",
    "policies": """
SELECT 'policy', p.schemaname || '.' || p.tablename || '.' || p.policyname,
  'AS ' || p.permissive || ' FOR ' || p.cmd || ' TO ' || array_to_string(p.roles, ', ')
  || coalesce(' USING (' || p.qual || ')', '') || coalesce(' WITH CHECK (' || p.with_check || ')', '')
FROM pg_policies p JOIN pg_namespace n ON n.nspname = p.schemaname
WHERE {user_schema}""",
    "row security": """
SELECT 'row security', n.nspname || '.' || c.relname,
  CASE WHEN c.relforcerowsecurity THEN 'enabled, forced on the owner too' ELSE 'enabled' END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity AND {user_schema}""",
}
_PLACES = {"user_schema": USER_SCHEMA,
           "not_extension_member_proc": _not_extension_member("pg_proc", "p.oid"),
           "not_extension_member_class": _not_extension_member("pg_class", "c.oid"),
           "not_extension_member_type": _not_extension_member("pg_type", "t.oid")}  # fmt: skip
QUERIES: dict[str, Composed] = {kind: SQL(query).format(**_PLACES) for kind, query in _QUERIES.items()}


def object_definitions(conn: Any) -> dict[str, dict[str, str]]:
    """kind ("function", "trigger", ...) -> "schema.name" (a trigger, rule or policy: "schema.table.name";
    a function: "schema.name(argument types)") -> its definition, on the open psycopg connection `conn`."""
    objects: dict[str, dict[str, str]] = {}
    for query in QUERIES.values():
        for kind, name, definition in conn.execute(query).fetchall():
            objects.setdefault(str(kind), {})[str(name)] = str(definition)
    return objects
