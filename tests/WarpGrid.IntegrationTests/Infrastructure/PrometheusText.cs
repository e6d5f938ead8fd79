using System.Globalization;

namespace WarpGrid.IntegrationTests.Infrastructure;

/// <summary>One sample of a Prometheus text exposition: name, labels, value.</summary>
internal sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>A minimal parser of the Prometheus text format (what <c>/metrics</c> serves), for assertions.</summary>
internal static class PrometheusText
{
    public static List<PrometheusSample> Parse(string text)
    {
        var samples = new List<PrometheusSample>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            string name;
            string rest;
            var brace = line.IndexOf('{', StringComparison.Ordinal);
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (brace >= 0 && (space < 0 || brace < space))
            {
                name = line[..brace];
                var i = brace + 1;
                while (line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq].Trim(',', ' ');
                    var value = new System.Text.StringBuilder();
                    var j = eq + 2; // skip ="
                    while (line[j] != '"')
                    {
                        if (line[j] == '\\')
                        {
                            j++;
                        }

                        value.Append(line[j]);
                        j++;
                    }

                    labels[key] = value.ToString();
                    i = j + 1;
                    if (line[i] == ',')
                    {
                        i++;
                    }
                }

                rest = line[(i + 1)..].Trim();
            }
            else
            {
                name = line[..space];
                rest = line[(space + 1)..].Trim();
            }

            var valueText = rest.Split(' ')[0];
            var parsed = valueText switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new PrometheusSample(name, labels, parsed));
        }

        return samples;
    }

    /// <summary>The value of the one sample named <paramref name="name"/> whose labels include <paramref name="labels"/>, or null.</summary>
    public static double? Value(this IEnumerable<PrometheusSample> samples, string name, params (string Key, string Value)[] labels)
    {
        var matches = samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).ToList();
        return matches.Count == 0 ? null : matches.Sum(s => s.Value);
    }

    /// <summary>Scrapes <c>/metrics</c> of a warpd.</summary>
    public static async Task<List<PrometheusSample>> ScrapeAsync(this WarpdProcess warpd)
    {
        using var response = await warpd.Api.GetAsync("metrics").ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        Assert.True(response.IsSuccessStatusCode, $"GET /metrics answered {(int)response.StatusCode}: {body}");
        return Parse(body);
    }
}
