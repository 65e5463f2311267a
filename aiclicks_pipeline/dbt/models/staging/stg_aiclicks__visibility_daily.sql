-- dense: one row per day, a day without responses is 0
{{ config(enabled=aiclicks_enabled('visibility_daily')) }}

select
    cast(domain_id as {{ dbt.type_string() }}) as domain_id,
    cast(date as date) as date_day,
    cast(value as {{ aiclicks_type_double() }}) as visibility_pct,
    cast(generated_at as {{ aiclicks_type_timestamp_tz() }}) as generated_at
from {{ source('aiclicks', 'visibility_daily') }}
