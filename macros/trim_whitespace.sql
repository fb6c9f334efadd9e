{#-
    Whitespace is Unicode's (audiences.md, "Identity"): the White_Space characters (tab, LF,
    VT, FF, CR, space, U+0085, U+00A0 no-break space, U+1680, U+2000-U+200A, U+2028, U+2029,
    U+202F, U+205F, U+3000) plus U+200B zero-width space and U+FEFF byte-order mark. Web
    forms and spreadsheets leave them around values; an email hashed with a trailing
    no-break space never matches at Microsoft. One definition, for trimming and testing.
-#}

{#- The characters, as the inside of a regular-expression bracket class (RE2 / Java syntax). -#}
{% macro whitespace_class() -%}
    \t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200B}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}
{%- endmacro %}


{#- `expression` (text) without leading and trailing whitespace. -#}
{% macro trim_whitespace(expression) -%}
    {{ return(adapter.dispatch('trim_whitespace', 'cio_bing_audiences')(expression)) }}
{%- endmacro %}

{% macro default__trim_whitespace(expression) -%}
    regexp_replace({{ expression }}, '^[{{ whitespace_class() }}]+|[{{ whitespace_class() }}]+$', '', 'g')
{%- endmacro %}
