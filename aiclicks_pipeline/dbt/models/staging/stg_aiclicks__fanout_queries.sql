-- one row per emission: a query one assistant (channel display name;
-- docs/api-notes.md, Reading: model naming) issued for a prompt
select
    cast(id as {{ dbt.type_string() }}) as fanout_query_id,
    cast(domain_id as {{ dbt.type_string() }}) as domain_id,
    cast(prompt_id as {{ dbt.type_string() }}) as prompt_id,
    cast(prompt_text as {{ dbt.type_string() }}) as prompt_text,
    cast(query as {{ dbt.type_string() }}) as query_text,
    cast(model as {{ dbt.type_string() }}) as channel_name,
    cast(generated_at as {{ aiclicks_type_timestamp_tz() }}) as generated_at
from {{ source('aiclicks', 'fanout_queries') }}
