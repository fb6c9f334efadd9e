{#-
    `column_name` is unique for the rows of the latest batch (the greatest `batch_column`),
    compared with the whole table: what each incremental build adds cannot duplicate
    anything, new or old. Earlier batches were checked by their own builds, and after a
    full refresh every row is in the latest batch, so the whole table is checked then.
    Cost: an aggregation over the latest batch plus a probe of the older rows, so an hourly
    build at 10M staged rows does not aggregate 10M keys.
-#}
{% test unique_in_latest_batch(model, column_name, batch_column) %}

    with

    latest_batch as (

        select max({{ batch_column }}) as batch from {{ model }}

    ),

    latest as (

        select {{ column_name }} as value
        from {{ model }}
        where {{ batch_column }} = (select latest_batch.batch from latest_batch)

    ),

    duplicated_within_latest as (

        select value from latest
        group by value
        having count(*) > 1

    ),

    -- the model is read directly in each part (a shared CTE over all its rows would be
    -- materialised); the older rows stream past a hash of the small latest batch
    duplicated_across_batches as (

        select distinct {{ column_name }} as value
        from {{ model }}
        where
            {{ batch_column }} < (select latest_batch.batch from latest_batch)
            and {{ column_name }} in (select latest.value from latest)

    )

    select value from duplicated_within_latest
    union all
    select value from duplicated_across_batches

{% endtest %}
