{{ config(enabled=aiclicks_enabled('prompts')) }}

select
    cast(id as {{ dbt.type_string() }}) as prompt_id,
    cast(domain_id as {{ dbt.type_string() }}) as domain_id,
    cast(text as {{ dbt.type_string() }}) as prompt_text,
    cast(estimated_search_volume as {{ dbt.type_bigint() }}) as estimated_search_volume,
    cast(created_at as {{ aiclicks_type_timestamp_tz() }}) as prompt_created_at,
    cast(generated_at as {{ aiclicks_type_timestamp_tz() }}) as generated_at
from {{ source('aiclicks', 'prompts') }}
