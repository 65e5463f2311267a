-- every snapshot; is_latest_snapshot selects the newest one of each domain and window
{{ config(enabled=aiclicks_enabled('citations')) }}

select
    cast(domain_id as {{ dbt.type_string() }}) as domain_id,
    cast(days as {{ dbt.type_bigint() }}) as days,
    cast(snapshot_date as date) as snapshot_date,
    cast(url as {{ dbt.type_string() }}) as cited_url,
    {{ aiclicks_normalize_host('domain') }} as cited_host,
    cast(page_type as {{ dbt.type_string() }}) as page_type,
    cast(page_title as {{ dbt.type_string() }}) as page_title,
    cast(frequency as {{ dbt.type_bigint() }}) as frequency,
    cast(mentions as {{ dbt.type_bigint() }}) as mentions_count,
    cast(prompt_count as {{ dbt.type_bigint() }}) as prompt_count,
    cast(first_seen as {{ aiclicks_type_timestamp_tz() }}) as first_seen_at,
    cast(last_seen as {{ aiclicks_type_timestamp_tz() }}) as last_seen_at,
    cast(generated_at as {{ aiclicks_type_timestamp_tz() }}) as generated_at,
    {{ aiclicks_is_latest_snapshot() }} as is_latest_snapshot
from {{ source('aiclicks', 'citations') }}
