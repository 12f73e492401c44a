"""Cold-start reference (b): a bare Lambda handler doing one DynamoDB ``UpdateItem`` with boto3, no framework."""

import json
import os

import boto3

client = boto3.client("dynamodb")


def handler(event, context):
    answer = client.update_item(TableName=os.environ["TABLE"], Key={"pk": {"S": "c#bench"}, "sk": {"S": "-"}},
                                UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}},
                                ReturnValues="UPDATED_NEW")
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"page_views": int(answer["Attributes"]["n"]["N"])})}
