"""Function-calling data: one internal schema, format readers, the generator, Parquet storage."""
