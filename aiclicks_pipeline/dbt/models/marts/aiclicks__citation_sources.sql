-- Every cited URL per snapshot, its host classified as the domain's own, a dedicated
-- competitor's (any competitor brand_rankings listed for the domain) or a third party's,
-- with frequency, ranks and the channels whose answers cited it (slugs reconciled through the seed).
-- Needs citations, domains and brand_rankings; without citations__models (no citation named a
-- model) the channel columns are null.
{{ config(enabled=aiclicks_citation_sources_enabled()) }}
{%- set with_models = aiclicks_enabled('citations__models') %}

with citations as (
    select * from {{ ref('stg_aiclicks__citations') }}
),

domains as (
    select * from {{ ref('stg_aiclicks__domains') }}
),

competitors as (
    select domain_id, brand_host as competitor_host, min(brand_name) as competitor_name
    from {{ ref('stg_aiclicks__brand_rankings') }}
    where not is_own_brand and brand_host is not null
    group by domain_id, brand_host
),

competitor_hits as (
    select
        citations.domain_id,
        citations.days,
        citations.snapshot_date,
        citations.cited_url,
        min(competitors.competitor_name) as competitor_name
    from citations
    inner join competitors
        on competitors.domain_id = citations.domain_id
        and {{ aiclicks_host_matches('citations.cited_host', 'competitors.competitor_host') }}
    group by citations.domain_id, citations.days, citations.snapshot_date, citations.cited_url
),

{%- if with_models %}
cited_by as (
    select
        models.domain_id,
        models.days,
        models.snapshot_date,
        models.cited_url,
        count(*) as channel_count,
        {{ dbt.listagg(
            "coalesce(channels.channel_name, models.model_slug)", "', '",
            "order by coalesce(channels.channel_name, models.model_slug)"
        ) }} as cited_by_channels,
        {{ dbt.listagg("models.model_slug", "', '", "order by models.model_slug") }} as cited_by_model_slugs
    from {{ ref('stg_aiclicks__citations__models') }} as models
    left join {{ ref('aiclicks_channels') }} as channels
        on channels.model_slug = models.model_slug
    group by models.domain_id, models.days, models.snapshot_date, models.cited_url
),
{%- endif %}

classified as (
    select
        citations.*,
        case
            when {{ aiclicks_host_matches('citations.cited_host', 'domains.domain_host') }} then 'own'
            when competitor_hits.competitor_name is not null then 'competitor'
            else 'third_party'
        end as source_type,
        competitor_hits.competitor_name,
        sum(citations.frequency) over (
            partition by citations.domain_id, citations.days, citations.snapshot_date, citations.cited_host
        ) as host_frequency,
        count(*) over (
            partition by citations.domain_id, citations.days, citations.snapshot_date, citations.cited_host
        ) as host_urls,
        sum(citations.frequency) over (
            partition by citations.domain_id, citations.days, citations.snapshot_date
        ) as snapshot_frequency
    from citations
    left join domains
        on domains.domain_id = citations.domain_id
    left join competitor_hits
        on competitor_hits.domain_id = citations.domain_id
        and competitor_hits.days = citations.days
        and competitor_hits.snapshot_date = citations.snapshot_date
        and competitor_hits.cited_url = citations.cited_url
)

select
    classified.domain_id,
    classified.days,
    classified.snapshot_date,
    classified.cited_url,
    classified.cited_host,
    classified.source_type,
    case when classified.source_type = 'competitor' then classified.competitor_name end as competitor_name,
    classified.page_type,
    classified.page_title,
    classified.frequency,
    classified.mentions_count,
    classified.prompt_count,
    cast(100 * classified.frequency as {{ aiclicks_type_double() }})
        / nullif(classified.snapshot_frequency, 0) as share_of_citations_pct,
    rank() over (
        partition by classified.domain_id, classified.days, classified.snapshot_date
        order by classified.frequency desc
    ) as url_rank,
    classified.host_frequency,
    classified.host_urls,
    dense_rank() over (
        partition by classified.domain_id, classified.days, classified.snapshot_date
        order by classified.host_frequency desc
    ) as host_rank,
    {%- if with_models %}
    cited_by.channel_count,
    cited_by.cited_by_channels,
    cited_by.cited_by_model_slugs,
    {%- else %}
    cast(null as {{ dbt.type_bigint() }}) as channel_count,
    cast(null as {{ dbt.type_string() }}) as cited_by_channels,
    cast(null as {{ dbt.type_string() }}) as cited_by_model_slugs,
    {%- endif %}
    classified.first_seen_at,
    classified.last_seen_at,
    classified.is_latest_snapshot
from classified
{%- if with_models %}
left join cited_by
    on cited_by.domain_id = classified.domain_id
    and cited_by.days = classified.days
    and cited_by.snapshot_date = classified.snapshot_date
    and cited_by.cited_url = classified.cited_url
{%- endif %}
