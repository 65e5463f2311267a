{{ config(enabled=aiclicks_enabled('brand_rankings')) }}
-- Every brand_rankings snapshot holds exactly one own-brand row, and it is the one with id 'brand'.
select domain_id, days, snapshot_date
from {{ ref('stg_aiclicks__brand_rankings') }}
group by domain_id, days, snapshot_date
having sum(case when is_own_brand then 1 else 0 end) <> 1
    or sum(case when is_own_brand and brand_id = 'brand' then 1 else 0 end) <> 1
