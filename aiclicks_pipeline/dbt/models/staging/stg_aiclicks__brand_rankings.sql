-- every snapshot; is_latest_snapshot selects the newest one of each domain and window
{{ config(enabled=aiclicks_enabled('brand_rankings')) }}

select
    cast(domain_id as {{ dbt.type_string() }}) as domain_id,
    cast(days as {{ dbt.type_bigint() }}) as days,
    cast(snapshot_date as date) as snapshot_date,
    cast(id as {{ dbt.type_string() }}) as brand_id,
    cast(name as {{ dbt.type_string() }}) as brand_name,
    cast(website as {{ dbt.type_string() }}) as brand_website,
    {{ aiclicks_normalize_host('website') }} as brand_host,
    cast(is_brand as {{ dbt.type_boolean() }}) as is_own_brand,
    cast(mentions as {{ dbt.type_bigint() }}) as mentions_count,
    cast(visibility as {{ aiclicks_type_double() }}) as visibility_pct,
    cast(sov as {{ aiclicks_type_double() }}) as sov_pct,
    cast(avg_position as {{ aiclicks_type_double() }}) as avg_position,
    cast(prompts_mentioned as {{ dbt.type_bigint() }}) as prompts_mentioned,
    cast(total_prompts as {{ dbt.type_bigint() }}) as total_prompts,
    cast(generated_at as {{ aiclicks_type_timestamp_tz() }}) as generated_at,
    {{ aiclicks_is_latest_snapshot() }} as is_latest_snapshot
from {{ source('aiclicks', 'brand_rankings') }}
