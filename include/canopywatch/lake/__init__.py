"""The Delta Lake tables of the product: schemas, exactly-once Kafka writes, time travel."""
