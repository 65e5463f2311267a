{#- Per group, the column sums to `total` within `tolerance`. Groups whose `unless_all_zero`
    column sums to zero (nothing to share) are left out. -#}
{% test sums_to(model, column_name, group_by, total=100, tolerance=0.5, unless_all_zero=none) %}

select {{ group_by | join(', ') }}, sum({{ column_name }}) as column_total
from {{ model }}
group by {{ group_by | join(', ') }}
having abs(sum({{ column_name }}) - {{ total }}) > {{ tolerance }}
{%- if unless_all_zero %}
   and sum({{ unless_all_zero }}) > 0
{%- endif %}

{% endtest %}
