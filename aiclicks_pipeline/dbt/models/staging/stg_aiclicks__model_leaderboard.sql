-- every snapshot; is_latest_snapshot selects the newest one of each domain and window
{{ config(enabled=aiclicks_enabled('model_leaderboard')) }}

select
    cast(domain_id as {{ dbt.type_string() }}) as domain_id,
    cast(days as {{ dbt.type_bigint() }}) as days,
    cast(snapshot_date as date) as snapshot_date,
    cast(model as {{ dbt.type_string() }}) as channel_name,
    cast(visibility as {{ aiclicks_type_double() }}) as visibility_pct,
    cast(avg_position as {{ aiclicks_type_double() }}) as avg_position,
    cast(generated_at as {{ aiclicks_type_timestamp_tz() }}) as generated_at,
    {{ aiclicks_is_latest_snapshot() }} as is_latest_snapshot
from {{ source('aiclicks', 'model_leaderboard') }}
