"""What the mysql client and server do with a script's text before any statement runs: DELIMITER
(obeyed as the client obeys it), executable comments `/*!NNNNN ... */` (read in their place, as the server
runs them, or reported with what they hold), and the server-side file statements sqlglot cannot parse."""

from __future__ import annotations

from dbguard.dialects import Dialect
from dbguard.sql.model import UNRECOGNIZED
from dbguard.sql.parse import parse_script
from tests.conftest import findings_for, fired

M = Dialect.MYSQL

TRIGGER_WITH_DELIMITER = """DELIMITER //
CREATE TRIGGER orders_audit AFTER UPDATE ON orders FOR EACH ROW
BEGIN
  INSERT INTO orders_log (order_id, changed_at) VALUES (NEW.id, NOW());
  DELETE FROM order_cache;
END //
delimiter ;
UPDATE orders SET status = 'shipped' WHERE id = 1;
"""


def test_delimiter_splits_where_the_mysql_client_would() -> None:
    script = parse_script(TRIGGER_WITH_DELIMITER, M)
    top = [s for s in script.statements if s.parent is None]
    assert [s.kind for s in top] == ["CREATE TRIGGER", "UPDATE"]
    assert top[0].text.startswith("CREATE TRIGGER") and top[0].text.endswith("END")  # no DELIMITER, no //
    assert top[1].span.line == 8
    body = [s.kind for s in script.statements if s.parent == top[0].index]
    assert body == ["INSERT", "DELETE"]  # the trigger body is checked like the script
    assert "ban-delete-without-where" in fired(TRIGGER_WITH_DELIMITER, M)
    assert "unrecognized-statement" not in fired(TRIGGER_WITH_DELIMITER, M)


def test_without_delimiter_a_semicolon_in_a_body_still_splits() -> None:
    script = parse_script("CREATE PROCEDURE p() BEGIN DELETE FROM t WHERE a < 1; END;", M)
    assert any(s.kind == UNRECOGNIZED for s in script.statements)


def test_a_standalone_executable_comment_is_the_statement_it_holds() -> None:
    script = parse_script("/*!40101 SET NAMES utf8mb4 */;\n/*!40014 SET FOREIGN_KEY_CHECKS=0 */;\n", M)
    assert [s.kind for s in script.statements] == ["SET", "SET"]
    assert fired("/*!40101 SET NAMES utf8mb4 */;", M) == set()
    assert "ban-disabling-integrity" in fired("/*!40014 SET FOREIGN_KEY_CHECKS=0 */;", M)


def test_an_executable_comment_not_understood_is_reported_with_what_it_holds() -> None:
    findings = [f for f in findings_for("/*!40000 ALTER TABLE orders DISABLE KEYS */;", M)
                if f.rule_id == "unrecognized-statement"]  # fmt: skip
    assert len(findings) == 1
    assert '"ALTER TABLE orders DISABLE KEYS" (MySQL, servers from 4.0.0 on)' in findings[0].message


def test_an_executable_comment_inside_a_statement_is_read_in_its_place() -> None:
    script = parse_script("CREATE TABLE t (a int) /*!50100 ENGINE=InnoDB */ /*!40101 DEFAULT CHARSET=utf8mb4 */;", M)
    assert [s.kind for s in script.statements] == ["CREATE TABLE"]
    findings = findings_for("CREATE TABLE t (a int) /*!50100 PARTITION BY HASH (a) PARTITIONS 4 */;", M)
    messages = [f.message for f in findings if f.rule_id == "unrecognized-statement"]
    assert len(messages) == 1
    assert '"PARTITION BY HASH (a) PARTITIONS 4" (MySQL, servers from 5.1.0 on)' in messages[0]


def test_mysqldump_splits_one_statement_over_several_executable_comments() -> None:
    sql = ("DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER stock_bu "
           "BEFORE UPDATE ON stock FOR EACH ROW BEGIN DELETE FROM stock_cache; END */;;\nDELIMITER ;\n")  # fmt: skip
    script = parse_script(sql, M)
    assert [s.kind for s in script.statements] == ["CREATE TRIGGER", "DELETE"]
    assert "ban-delete-without-where" in fired(sql, M)  # the body the comments hold is checked too


def test_mariadb_executable_comment_names_mariadb() -> None:
    findings = findings_for("/*M!100101 SET STATEMENT max_statement_time=1 FOR DELETE FROM t */;", M)
    assert any("(MariaDB, servers from 10.1.1 on)" in f.message for f in findings)


def test_server_side_files_are_copy_actions() -> None:
    script = parse_script("LOAD DATA INFILE '/tmp/s.csv' INTO TABLE stock;\n"
                          "SELECT id FROM orders WHERE id > 10 INTO OUTFILE '/tmp/o.csv';\n", M)  # fmt: skip
    load, export = script.statements
    assert load.kind == "LOAD DATA" and load.facts.tables_written == ("stock",)
    assert load.actions[0].get("file") is True and load.actions[0].get("is_from") is True
    assert export.kind == "SELECT INTO FILE" and export.facts.tables_read == ("orders",)
    assert export.actions[-1].get("path") == "/tmp/o.csv"


def test_a_delimiter_glued_to_a_word_still_ends_the_statement() -> None:
    sql = ("DELIMITER $$\nCREATE TRIGGER t_bi BEFORE INSERT ON orders FOR EACH ROW BEGIN SET NEW.created_at = NOW(); "
           "END$$\nDELIMITER ;\nDELETE FROM orders;\n")  # fmt: skip
    top = [s for s in parse_script(sql, M).statements if s.parent is None]
    assert [s.kind for s in top] == ["CREATE TRIGGER", "DELETE"]
    assert top[0].text.endswith("END")
