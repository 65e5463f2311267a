-- Per AI channel and snapshot: the leaderboard's visibility and position (display names) beside
-- the URLs that channel cited (slugs), reconciled through the aiclicks_channels seed: the
-- leaderboard and fan-out queries name a channel by display name, the citations by model slug
-- (docs/api-notes.md, Reading: model naming).
-- A channel only one side knows still gets its row; a slug missing from the seed keeps its slug
-- as channel_name (and the seed's relationships tests warn about it). Needs model_leaderboard;
-- without aiclicks__citation_sources (citations, domains, brand_rankings) and citations__models,
-- the cited URL counts are null (unknown).
{{ config(enabled=aiclicks_enabled('model_leaderboard')) }}
{%- set with_citations = aiclicks_citation_sources_enabled() and aiclicks_enabled('citations__models') %}

with channels as (
    select channel_name, model_slug from {{ ref('aiclicks_channels') }}
),

leaderboard as (
    select
        leaderboard.domain_id,
        leaderboard.days,
        leaderboard.snapshot_date,
        leaderboard.channel_name,
        channels.model_slug,
        leaderboard.visibility_pct,
        leaderboard.avg_position,
        rank() over (
            partition by leaderboard.domain_id, leaderboard.days, leaderboard.snapshot_date
            order by leaderboard.visibility_pct desc
        ) as visibility_rank,
        leaderboard.is_latest_snapshot
    from {{ ref('stg_aiclicks__model_leaderboard') }} as leaderboard
    left join channels
        on channels.channel_name = leaderboard.channel_name
),

{%- if with_citations %}
citation_snapshots as (
    select distinct domain_id, days, snapshot_date
    from {{ ref('aiclicks__citation_sources') }}
),

cited as (
    select
        models.domain_id,
        models.days,
        models.snapshot_date,
        coalesce(channels.channel_name, models.model_slug) as channel_name,
        models.model_slug,
        count(*) as cited_urls,
        sum(case when sources.source_type = 'own' then 1 else 0 end) as own_cited_urls,
        sum(case when sources.source_type = 'competitor' then 1 else 0 end) as competitor_cited_urls
    from {{ ref('stg_aiclicks__citations__models') }} as models
    inner join {{ ref('aiclicks__citation_sources') }} as sources
        on sources.domain_id = models.domain_id
        and sources.days = models.days
        and sources.snapshot_date = models.snapshot_date
        and sources.cited_url = models.cited_url
    left join channels
        on channels.model_slug = models.model_slug
    group by
        models.domain_id,
        models.days,
        models.snapshot_date,
        coalesce(channels.channel_name, models.model_slug),
        models.model_slug
),
{%- endif %}

joined as (
    {%- if with_citations %}
    select
        coalesce(leaderboard.domain_id, cited.domain_id) as domain_id,
        coalesce(leaderboard.days, cited.days) as days,
        coalesce(leaderboard.snapshot_date, cited.snapshot_date) as snapshot_date,
        coalesce(leaderboard.channel_name, cited.channel_name) as channel_name,
        coalesce(leaderboard.model_slug, cited.model_slug) as model_slug,
        leaderboard.visibility_pct,
        leaderboard.avg_position,
        leaderboard.visibility_rank,
        leaderboard.channel_name is not null as in_leaderboard,
        cited.cited_urls,
        cited.own_cited_urls,
        cited.competitor_cited_urls
    from leaderboard
    full outer join cited
        on cited.domain_id = leaderboard.domain_id
        and cited.days = leaderboard.days
        and cited.snapshot_date = leaderboard.snapshot_date
        and cited.channel_name = leaderboard.channel_name
    {%- else %}
    select
        leaderboard.domain_id,
        leaderboard.days,
        leaderboard.snapshot_date,
        leaderboard.channel_name,
        leaderboard.model_slug,
        leaderboard.visibility_pct,
        leaderboard.avg_position,
        leaderboard.visibility_rank,
        true as in_leaderboard
    from leaderboard
    {%- endif %}
)

-- a citations snapshot lists every cited URL: a channel absent from it cited none (0); without
-- a citations snapshot the counts are unknown (null)
select
    joined.domain_id,
    joined.days,
    joined.snapshot_date,
    joined.channel_name,
    joined.model_slug,
    joined.visibility_pct,
    joined.avg_position,
    joined.visibility_rank,
    joined.in_leaderboard,
    {%- if with_citations %}
    case when citation_snapshots.domain_id is not null then coalesce(joined.cited_urls, 0) end as cited_urls,
    case when citation_snapshots.domain_id is not null then coalesce(joined.own_cited_urls, 0) end as own_cited_urls,
    case
        when citation_snapshots.domain_id is not null then coalesce(joined.competitor_cited_urls, 0)
    end as competitor_cited_urls,
    {%- else %}
    cast(null as {{ dbt.type_bigint() }}) as cited_urls,
    cast(null as {{ dbt.type_bigint() }}) as own_cited_urls,
    cast(null as {{ dbt.type_bigint() }}) as competitor_cited_urls,
    {%- endif %}
    joined.snapshot_date = max(joined.snapshot_date) over (
        partition by joined.domain_id, joined.days
    ) as is_latest_snapshot
from joined
{%- if with_citations %}
left join citation_snapshots
    on citation_snapshots.domain_id = joined.domain_id
    and citation_snapshots.days = joined.days
    and citation_snapshots.snapshot_date = joined.snapshot_date
{%- endif %}
