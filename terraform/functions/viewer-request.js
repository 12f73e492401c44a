// CloudFront Function (cloudfront-js-2.0), viewer request. Rendered by
// Terraform's templatefile() once per use: apex_domain, www_domain and
// serve_index are filled in at plan time.
//
// 1. www.<domain> answers a permanent redirect to the apex, path and query
//    string kept, so the site has one canonical address. Every behaviour
//    runs it (the site, the blog, the API, the stats): a path served
//    without it would live on two host names. GET and HEAD get a 301;
//    other methods a 308, which keeps the method and the body.
// 2. Only where serve_index is true (the default behaviour, S3): a path
//    ending in "/" is served from its index.html, because S3 behind Origin
//    Access Control is a plain object store and knows no index documents
//    below the root (the root itself is the distribution's default object).
//    The function's own paths (/blog/) must reach it unchanged. A path
//    whose last part has no dot is such a folder without its slash (/de
//    for the German resume at /de/): it answers a permanent redirect to
//    the folder, as a web server would, rather than S3's missing object.
//    Only a path of plain segments (FOLDER) is redirected: the target is
//    the path itself, and one starting "//" or "/\" (//evil.example/x)
//    would be read by browsers as another site's address.

var APEX = '${apex_domain}';
var WWW = '${www_domain}';
var SERVE_INDEX = ${serve_index};
var FOLDER = /^(\/[A-Za-z0-9._~-]+)+$/;

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
    var safe = request.method === 'GET' || request.method === 'HEAD';
    return {
      statusCode: safe ? 301 : 308,
      statusDescription: safe ? 'Moved Permanently' : 'Permanent Redirect',
      headers: {
        location: { value: 'https://' + APEX + request.uri + queryString(request.querystring) },
        'cache-control': { value: 'public, max-age=86400' },
      },
    };
  }

  if (SERVE_INDEX && request.uri.charAt(request.uri.length - 1) === '/') {
    request.uri += 'index.html';
  } else if (SERVE_INDEX && FOLDER.test(request.uri) && request.uri.split('/').pop().indexOf('.') === -1) {
    return {
      statusCode: 301,
      statusDescription: 'Moved Permanently',
      headers: {
        location: { value: request.uri + '/' + queryString(request.querystring) },
        'cache-control': { value: 'public, max-age=86400' },
      },
    };
  }
  return request;
}
