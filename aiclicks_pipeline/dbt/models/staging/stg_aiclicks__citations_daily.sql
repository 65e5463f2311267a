-- sparse: a day without responses has no row (unknown, not zero); marts keep it null
{{ config(enabled=aiclicks_enabled('citations_daily')) }}

select
    cast(domain_id as {{ dbt.type_string() }}) as domain_id,
    cast(date as date) as date_day,
    cast(value as {{ dbt.type_bigint() }}) as citations_count,
    cast(generated_at as {{ aiclicks_type_timestamp_tz() }}) as generated_at
from {{ source('aiclicks', 'citations_daily') }}
