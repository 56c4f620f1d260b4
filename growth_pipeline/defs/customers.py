"""Customers come from customers.yaml: this sensor turns each entry into a Dagster customer partition."""

import dagster as dg

from growth_pipeline.config import ConfigError
from growth_pipeline.defs.partitions import customer_partitions
from growth_pipeline.defs.resources import GrowthResource


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def customer_registry(context: dg.SensorEvaluationContext, growth: GrowthResource) -> dg.SensorResult:
    """Adds a customer partition for every customer declared in customers.yaml (GROWTH_CUSTOMERS).

    A customer removed from the file keeps its partition and data: deleting a customer is a deliberate
    act (delete the partition in the UI, then its warehouse file), not a side effect of an edit.
    """
    try:
        wanted = growth.registry().ids
    except ConfigError as exc:
        return dg.SensorResult(skip_reason=str(exc))
    known = set(context.instance.get_dynamic_partitions(customer_partitions.name))
    new = [c for c in wanted if c not in known]
    if not new:
        return dg.SensorResult(skip_reason=f"{len(wanted)} customers, all registered")
    context.log.info(f"registering customers: {', '.join(new)}")
    return dg.SensorResult(dynamic_partitions_requests=[customer_partitions.build_add_request(new)])
