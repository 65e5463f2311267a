-- Fan-out queries ranked by how often each assistant emitted them, per domain and channel,
-- over every emission loaded so far.
{{ config(enabled=aiclicks_enabled('fanout_queries')) }}

with emissions as (
    select * from {{ ref('stg_aiclicks__fanout_queries') }}
),

counted as (
    select
        domain_id,
        channel_name,
        query_text,
        count(*) as emissions,
        count(distinct prompt_id) as prompts
    from emissions
    group by domain_id, channel_name, query_text
)

select
    counted.domain_id,
    counted.channel_name,
    channels.model_slug,
    counted.query_text,
    counted.emissions,
    counted.prompts,
    rank() over (
        partition by counted.domain_id, counted.channel_name order by counted.emissions desc
    ) as emission_rank,
    cast(100 * counted.emissions as {{ aiclicks_type_double() }}) / sum(counted.emissions) over (
        partition by counted.domain_id, counted.channel_name
    ) as share_of_channel_emissions_pct
from counted
left join {{ ref('aiclicks_channels') }} as channels
    on channels.channel_name = counted.channel_name
