"""Decision agents from an application's database: read its decisions table by a mapping, compute
component rewards, export training records per agent type, evaluate on a test file, register model
versions and compare them in A/B serving."""
