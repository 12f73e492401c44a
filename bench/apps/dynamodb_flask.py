"""Cold-start reference (a): a Flask app with one route doing one DynamoDB ``UpdateItem``.

Packaged by the same Zappa, settings and bytecode step as the service
(bench.lambda_cold copies it into a project of its own as ``refapp.py``).
The table comes from the ``TABLE`` environment variable.
"""

import os

import boto3
from flask import Flask, jsonify

app = Flask(__name__)
client = None


@app.post("/api/visitors")
def count_view():
    global client
    if client is None:
        client = boto3.client("dynamodb")
    answer = client.update_item(TableName=os.environ["TABLE"], Key={"pk": {"S": "c#bench"}, "sk": {"S": "-"}},
                                UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}},
                                ReturnValues="UPDATED_NEW")
    return jsonify(page_views=int(answer["Attributes"]["n"]["N"]))
