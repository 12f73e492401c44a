// CloudFront Function (cloudfront-js-2.0), viewer request, default behaviour.
// Rendered by Terraform's templatefile(): apex_domain and www_domain are
// filled in at plan time.
//
// 1. www.<domain> answers a permanent redirect to the apex, path and query
//    string kept, so the site has one canonical address.
// 2. A path ending in "/" is served from its index.html: S3 behind Origin
//    Access Control is a plain object store and knows no index documents
//    below the root (the root itself is the distribution's default object).

var APEX = '${apex_domain}';
var WWW = '${www_domain}';

function queryString(querystring) {
  var parts = [];
  for (var name in querystring) {
    var entry = querystring[name];
    var values = entry.multiValue ? entry.multiValue : [entry];
    for (var i = 0; i < values.length; i++) {
      parts.push(values[i].value === '' ? name : name + '=' + values[i].value);
    }
  }
  return parts.length ? '?' + parts.join('&') : '';
}

function handler(event) {
  var request = event.request;
  var host = request.headers.host ? request.headers.host.value.toLowerCase() : '';

  if (host === WWW) {
    return {
      statusCode: 301,
      statusDescription: 'Moved Permanently',
      headers: {
        location: { value: 'https://' + APEX + request.uri + queryString(request.querystring) },
        'cache-control': { value: 'public, max-age=86400' },
      },
    };
  }

  if (request.uri.charAt(request.uri.length - 1) === '/') {
    request.uri += 'index.html';
  }
  return request;
}
