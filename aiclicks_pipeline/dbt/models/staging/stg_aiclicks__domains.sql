{{ config(enabled=aiclicks_enabled('domains')) }}

select
    cast(id as {{ dbt.type_string() }}) as domain_id,
    cast(name as {{ dbt.type_string() }}) as domain_name,
    cast(website as {{ dbt.type_string() }}) as domain_website,
    {{ aiclicks_normalize_host('website') }} as domain_host,
    cast(created_at as {{ aiclicks_type_timestamp_tz() }}) as domain_created_at,
    cast(generated_at as {{ aiclicks_type_timestamp_tz() }}) as generated_at
from {{ source('aiclicks', 'domains') }}
